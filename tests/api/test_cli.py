"""The citekb command line, run in-process with CliRunner on the tiny corpus and HashEmbedder.

The contract: `--json` puts exactly one JSON document on stdout; exit 0 ok, 1 an error (or some
files failed to ingest), 2 a usage error; every error is a one-line message, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from citekb.ingest.ids import doc_id_for_file
from tiny_docs import MARKDOWN_TEXT

from api_contract import (
    CITATION_FIELDS,
    DOCX_QUESTION,
    HASH_MODEL,
    HIT_FIELDS,
    INGEST_FIELDS,
    INGESTED_FIELDS,
    MD_QUESTION,
    OTHER_HASH_MODEL,
    PDF_QUESTION,
    UNANSWERABLE,
    CliResult,
    RunCli,
    assert_located,
    where,
)

CORPUS = ("field_guide.pdf", "security.md", "travel_policy.docx")
NOT_A_PDF = b"%PDF-1.4\nthis is not a PDF body at all\n"


def ingest(run_cli: RunCli, index: Path, *paths: Path) -> CliResult:
    return run_cli("ingest", *paths, "--index", index, "--json")


def doc_chunks(run_cli: RunCli, index: Path) -> dict[str, int]:
    """{doc_id: chunks} from `docs list --json`."""
    result = run_cli("docs", "list", "--index", index, "--json")
    assert result.exit_code == 0, result.stderr
    assert set(result.json()) == {"documents"}
    return {d["doc_id"]: d["chunks"] for d in result.json()["documents"]}


def search(run_cli: RunCli, index: Path, query: str, k: int = 10) -> list[dict]:
    result = run_cli("search", query, "--k", str(k), "--index", index, "--json")
    assert result.exit_code == 0, result.stderr
    assert set(result.json()) == {"hits"}
    hits: list[dict] = result.json()["hits"]
    return hits


@pytest.fixture
def indexed(run_cli: RunCli, corpus_dir: Path, tmp_path: Path) -> Path:
    """An index of the tiny corpus, built through the CLI."""
    index = tmp_path / "idx"
    result = ingest(run_cli, index, corpus_dir)
    assert result.exit_code == 0, result.stderr
    return index


# --------------------------------------------------------------------------- ingest

def test_ingest_json_reports_every_file_and_nothing_else_on_stdout(run_cli: RunCli, corpus_dir: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    result = ingest(run_cli, index, corpus_dir)
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert set(report) == INGEST_FIELDS
    assert report["skipped"] == [] and report["failed"] == []
    by_source = {entry["source"]: entry for entry in report["ingested"]}
    assert sorted(by_source) == list(CORPUS)
    for name, pages in (("field_guide.pdf", 3), ("travel_policy.docx", 3), ("security.md", None)):
        entry = by_source[name]
        assert INGESTED_FIELDS <= entry.keys()
        assert entry["path"] == str((corpus_dir / name).resolve())
        assert entry["doc_id"] == doc_id_for_file(corpus_dir / name)
        assert entry["pages"] == pages
        assert entry["unchanged"] is False
        assert entry["chunks"] >= 1
    # The index holds what the report says, chunk for chunk.
    assert doc_chunks(run_cli, index) == {e["doc_id"]: e["chunks"] for e in report["ingested"]}


def test_unsupported_files_are_skipped_with_a_reason(run_cli: RunCli, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "security.md").write_text(MARKDOWN_TEXT, "utf-8")
    (folder / "notes.txt").write_text("not a supported format", "utf-8")
    result = ingest(run_cli, tmp_path / "idx", folder)
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["skipped"] == [{"path": str(folder / "notes.txt"), "reason": "unsupported file type '.txt'"}]
    assert [e["doc_id"] for e in report["ingested"]] == [doc_id_for_file(folder / "security.md")]
    assert report["failed"] == []


def test_a_failed_file_exits_1_and_the_good_ones_are_still_searchable(run_cli: RunCli, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bad.pdf").write_bytes(NOT_A_PDF)
    good = folder / "security.md"
    good.write_text(MARKDOWN_TEXT, "utf-8")
    index = tmp_path / "idx"

    result = ingest(run_cli, index, folder)

    assert result.exit_code == 1
    report = result.json()  # still one JSON document on stdout, failure or not
    assert [f["path"] for f in report["failed"]] == [str((folder / "bad.pdf").resolve())]
    assert "bad.pdf" in report["failed"][0]["error"]
    good_id = doc_id_for_file(good)
    assert [e["doc_id"] for e in report["ingested"]] == [good_id]
    assert doc_chunks(run_cli, index) == {good_id: report["ingested"][0]["chunks"]}
    assert search(run_cli, index, MD_QUESTION, k=1)[0]["doc_id"] == good_id


def test_when_every_file_fails_no_index_is_created(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(NOT_A_PDF)
    index = tmp_path / "idx"
    result = ingest(run_cli, index, bad)
    assert result.exit_code == 1
    assert result.json() == {"ingested": [], "skipped": [], "failed": [{"path": str(bad.resolve()), "error": result.json()["failed"][0]["error"]}], "removed": []}
    assert "bad.pdf" in result.json()["failed"][0]["error"]
    assert not (index / "CURRENT").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.md"], "missing.md: no such file or folder"),
        (["security.md", "missing.md"], "missing.md: no such file or folder"),  # nothing goes in, not even the good file
        ([], "Missing argument 'PATHS...'"),
    ],
)
def test_ingest_usage_errors_exit_2_and_leave_no_index(run_cli: RunCli, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "security.md").write_text(MARKDOWN_TEXT, "utf-8")
    index = tmp_path / "idx"
    result = run_cli("ingest", *args, "--index", index, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not index.exists()


def test_reingesting_the_same_file_changes_nothing(run_cli: RunCli, markdown_path: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    first = ingest(run_cli, index, markdown_path).json()["ingested"][0]
    snapshot = (index / "CURRENT").read_text("utf-8")

    again = ingest(run_cli, index, markdown_path)

    assert again.exit_code == 0, again.stderr
    second = again.json()["ingested"][0]
    assert second["doc_id"] == first["doc_id"] == doc_id_for_file(markdown_path)
    assert second["unchanged"] is True and first["unchanged"] is False
    assert second["chunks"] == first["chunks"]
    assert doc_chunks(run_cli, index) == {first["doc_id"]: first["chunks"]}
    assert (index / "CURRENT").read_text("utf-8") == snapshot  # no new snapshot was published


def test_a_changed_file_replaces_its_old_chunks(run_cli: RunCli, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    path = tmp_path / "policy.md"
    path.write_text(MARKDOWN_TEXT, "utf-8")
    old_id = ingest(run_cli, index, path).json()["ingested"][0]["doc_id"]
    path.write_text("# Visitor Policy\n\nVisitors sign in at the front desk with a photo ID.\n", "utf-8")

    result = ingest(run_cli, index, path)

    assert result.exit_code == 0, result.stderr
    entry = result.json()["ingested"][0]
    assert entry["doc_id"] == doc_id_for_file(path) != old_id
    assert entry["unchanged"] is False
    assert doc_chunks(run_cli, index) == {entry["doc_id"]: entry["chunks"]}
    # The old text is gone from the index, not merely from the document list.
    assert {h["doc_id"] for h in search(run_cli, index, "passwords sixteen characters", k=100)} == {entry["doc_id"]}


def test_a_changed_file_whose_new_bytes_are_already_indexed_drops_its_old_version(run_cli: RunCli, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text("# Alpha\n\nThe alpha pump runs at night.\n", "utf-8")
    b.write_text("# Beta\n\nThe beta pump runs by day.\n", "utf-8")
    ingest(run_cli, index, a, b)
    old_a, b_id = doc_id_for_file(a), doc_id_for_file(b)
    shutil.copyfile(b, a)  # a.md now holds exactly b.md's bytes

    result = ingest(run_cli, index, a)

    assert result.exit_code == 0, result.stderr
    assert result.json()["ingested"][0]["doc_id"] == b_id
    documents = doc_chunks(run_cli, index)
    assert old_a not in documents
    assert list(documents) == [b_id]


# --------------------------------------------------------------------------- search and ask

def test_search_json_hits_carry_the_pdf_page(run_cli: RunCli, indexed: Path, pdf_path: Path) -> None:
    hits = search(run_cli, indexed, PDF_QUESTION, k=3)
    assert len(hits) == 3
    for hit in hits:
        assert_located(hit, HIT_FIELDS)
        assert isinstance(hit["score"], float)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    top = hits[0]
    assert where(top) == ("field_guide.pdf", 2, 2, None, None, "Acme Pump Field Guide > 2. Maintenance")
    assert top["doc_id"] == doc_id_for_file(pdf_path)
    assert top["title"] == "Acme Pump Field Guide"
    assert "Replace the intake filter every 45 days" in top["text"]


def test_search_json_markdown_hits_carry_lines_not_pages(run_cli: RunCli, indexed: Path, markdown_path: Path) -> None:
    [top] = search(run_cli, indexed, MD_QUESTION, k=1)
    assert_located(top, HIT_FIELDS)
    assert where(top) == ("security.md", None, None, 17, 19, "Security Policy > Incidents")
    assert top["doc_id"] == doc_id_for_file(markdown_path)
    assert "extension 4411" in top["text"]


def test_search_k_caps_the_hits_and_a_large_k_returns_each_chunk_once(run_cli: RunCli, indexed: Path) -> None:
    total = sum(doc_chunks(run_cli, indexed).values())
    assert [len(search(run_cli, indexed, PDF_QUESTION, k=k)) for k in (1, 2, 5)] == [1, 2, 5]
    everything = search(run_cli, indexed, PDF_QUESTION, k=100)
    assert len(everything) == total
    assert len({h["chunk_id"] for h in everything}) == total


@pytest.mark.parametrize(
    ("question", "expected_where", "phrase"),
    [
        (PDF_QUESTION, ("field_guide.pdf", 2, 2, None, None, "Acme Pump Field Guide > 2. Maintenance"), "every 45 days"),
        (DOCX_QUESTION, ("travel_policy.docx", 3, 3, None, None, "Travel Policy > Approval"), "approval from a director"),
        (MD_QUESTION, ("security.md", None, None, 19, 19, "Security Policy > Incidents"), "extension 4411"),
    ],
    ids=["pdf", "docx", "markdown"],
)
def test_ask_json_cites_the_page_or_lines_the_answer_is_on(
    run_cli: RunCli, indexed: Path, question: str, expected_where: tuple[object, ...], phrase: str
) -> None:
    result = run_cli("ask", question, "--index", indexed, "--json")
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert set(out) == {"answer", "grounded", "citations", "hits", "sentences"}
    assert out["grounded"] is True
    # Every sentence of the extractive answer is checked against its citation, and supported.
    assert out["sentences"] and all(s["supported"] for s in out["sentences"])
    assert all(out["answer"][s["start"]:s["end"]] == s["text"] for s in out["sentences"])
    citations = out["citations"]
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1)) and citations
    hits_by_chunk = {h["chunk_id"]: h for h in out["hits"]}
    for citation in citations:
        assert_located(citation, CITATION_FIELDS)
        assert f"[{citation['n']}]" in out["answer"]
        assert citation["text"] in hits_by_chunk[citation["chunk_id"]]["text"]  # quotes a passage it returned
    for hit in out["hits"]:
        assert_located(hit, HIT_FIELDS)
    assert where(citations[0]) == expected_where
    assert phrase in citations[0]["text"] and phrase in out["answer"]


def test_ask_json_says_so_when_the_documents_do_not_answer(run_cli: RunCli, indexed: Path) -> None:
    result = run_cli("ask", UNANSWERABLE, "--index", indexed, "--json")
    assert result.exit_code == 0, result.stderr
    out = result.json()
    assert out["grounded"] is False
    assert out["citations"] == []
    assert "[1]" not in out["answer"]


def test_ask_with_an_unknown_backend_exits_1_with_a_message(run_cli: RunCli, indexed: Path) -> None:
    result = run_cli("ask", PDF_QUESTION, "--backend", "nope", "--index", indexed, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("citekb: error: unknown answer backend 'nope'; choose one of ['extractive', ")


# --------------------------------------------------------------------------- docs

def test_docs_delete_removes_the_document_and_its_chunks(run_cli: RunCli, indexed: Path, pdf_path: Path, corpus_dir: Path) -> None:
    pdf_id = doc_id_for_file(pdf_path)
    before = doc_chunks(run_cli, indexed)

    result = run_cli("docs", "delete", pdf_id, "--index", indexed, "--json")

    assert result.exit_code == 0, result.stderr
    deleted = result.json()["deleted"]
    assert (deleted["doc_id"], deleted["source"], deleted["chunks"]) == (pdf_id, "field_guide.pdf", before[pdf_id])
    assert doc_chunks(run_cli, indexed) == {d: n for d, n in before.items() if d != pdf_id}
    assert pdf_id not in {h["doc_id"] for h in search(run_cli, indexed, PDF_QUESTION, k=100)}

    again = run_cli("docs", "delete", pdf_id, "--index", indexed)
    assert again.exit_code == 1
    assert again.stderr == f"citekb: error: no document with doc_id '{pdf_id}' in the index\n"


def test_docs_delete_without_json_says_what_it_deleted(run_cli: RunCli, indexed: Path, markdown_path: Path) -> None:
    md_id = doc_id_for_file(markdown_path)
    chunks = doc_chunks(run_cli, indexed)[md_id]
    result = run_cli("docs", "delete", md_id, "--index", indexed)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"deleted {md_id} (security.md, {chunks} chunks)\n"


def test_docs_list_of_a_missing_index_is_empty(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("docs", "list", "--index", tmp_path / "nothing-here", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"documents": []}


# --------------------------------------------------------------------------- errors

def test_search_without_an_index_exits_1_saying_so(run_cli: RunCli) -> None:
    result = run_cli("search", "foo", "--index", "/nonexistent/dir")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "citekb: error: no citekb index at /nonexistent/dir: run `citekb ingest PATH --index /nonexistent/dir` first\n"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["search", "foo", "--json"], 1, "citekb: error: no citekb index at {index}"),
        (["ask", "foo", "--json"], 1, "citekb: error: no citekb index at {index}"),
        (["docs", "delete", "0123456789abcdef"], 1, "citekb: error: no citekb index at {index}"),
        (["search", "   "], 2, "QUERY is empty"),
        (["ask", ""], 2, "QUERY is empty"),
        (["search", "foo", "--k", "0"], 2, "Invalid value for '--k'"),
    ],
)
def test_errors_are_one_message_on_stderr_never_a_traceback(
    run_cli: RunCli, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    index = tmp_path / "nonexistent" / "dir"
    result = run_cli(*args, "--index", index)
    assert result.exit_code == code
    assert result.stdout == ""
    assert message.format(index=index) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nonexistent").exists()  # a failed command leaves no index folder behind


def test_an_index_built_with_another_embedding_model_is_an_error(run_cli: RunCli, indexed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITEKB_EMBEDDING_MODEL", OTHER_HASH_MODEL)
    result = run_cli("search", PDF_QUESTION, "--index", indexed, "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"citekb: error: index {indexed} was built with embedding model {HASH_MODEL!r}, not {OTHER_HASH_MODEL!r}")


# --------------------------------------------------------------------------- where the index is

def test_the_index_defaults_to_dot_citekb_in_the_working_directory(run_cli: RunCli, markdown_path: Path, tmp_path: Path) -> None:
    result = run_cli("ingest", markdown_path, "--json")  # run_cli works in tmp_path
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / ".citekb" / "CURRENT").is_file()
    listed = run_cli("docs", "list", "--json").json()["documents"]
    assert [d["doc_id"] for d in listed] == [doc_id_for_file(markdown_path)]


def test_citekb_index_in_the_environment_is_used_and_index_flag_beats_it(
    run_cli: RunCli, markdown_path: Path, pdf_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_index, flag_index = tmp_path / "env-idx", tmp_path / "flag-idx"
    monkeypatch.setenv("CITEKB_INDEX", str(env_index))

    assert run_cli("ingest", markdown_path, "--json").exit_code == 0
    assert run_cli("ingest", pdf_path, "--index", flag_index, "--json").exit_code == 0

    assert list(doc_chunks(run_cli, env_index)) == [doc_id_for_file(markdown_path)]
    assert list(doc_chunks(run_cli, flag_index)) == [doc_id_for_file(pdf_path)]
    from_env = run_cli("docs", "list", "--json").json()["documents"]
    assert [d["doc_id"] for d in from_env] == [doc_id_for_file(markdown_path)]
    assert not (tmp_path / ".citekb").exists()
