"""The HTTP API, through TestClient on create_app(KnowledgeBase(..., embedder=HashEmbedder())).

The contract: the ingest report has the CLI's shape; every error is a 4xx with a JSON body
{"error": "..."}; bad input is never a 500; an upload lands in INDEX/uploads/ under its base name
and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from citekb import __version__
from citekb.api.http.app import create_app
from citekb.api.kb import KnowledgeBase
from citekb.ingest.ids import doc_id_for_bytes, doc_id_for_file
from tiny_docs import MARKDOWN_TEXT

from api_contract import (
    CITATION_FIELDS,
    DOCX_QUESTION,
    HIT_FIELDS,
    INGEST_FIELDS,
    INGESTED_FIELDS,
    MD_QUESTION,
    OTHER_HASH_MODEL,
    PDF_QUESTION,
    UNANSWERABLE,
    assert_located,
    make_kb,
    where,
)
from fakes import HashEmbedder

CORPUS = ("field_guide.pdf", "security.md", "travel_policy.docx")
NOT_A_PDF = b"%PDF-1.4\nthis is not a PDF body at all\n"


def upload(client: TestClient, *files: tuple[str, bytes]) -> Response:
    return client.post("/v1/documents", files=[("files", (name, data, "application/octet-stream")) for name, data in files])


def error_of(response: Response, status: int) -> str:
    """The error message of a response that must be exactly {"error": "..."} with this status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return str(body["error"])


def documents(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/v1/documents")
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"documents"}
    return {d["doc_id"]: d for d in response.json()["documents"]}


def files_outside(root: Path, index: Path) -> list[Path]:
    """Files under root that are not inside the index directory."""
    return sorted(p for p in root.rglob("*") if p.is_file() and index not in p.parents)


@pytest.fixture
def corpus_files(corpus_dir: Path) -> list[tuple[str, bytes]]:
    return [(name, (corpus_dir / name).read_bytes()) for name in CORPUS]


@pytest.fixture
def indexed(client: TestClient, corpus_files: list[tuple[str, bytes]]) -> TestClient:
    """The client, after the tiny corpus was uploaded through it."""
    response = upload(client, *corpus_files)
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == []
    return client


# --------------------------------------------------------------------------- health and documents

def test_healthz_counts_the_documents(client: TestClient, corpus_files: list[tuple[str, bytes]]) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "version": __version__, "documents": 0}
    upload(client, *corpus_files)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__, "documents": 3}


def test_upload_several_files_reports_like_ingest(client: TestClient, index_dir: Path, corpus_dir: Path,
                                                   corpus_files: list[tuple[str, bytes]]) -> None:
    response = upload(client, *corpus_files)
    assert response.status_code == 200, response.text
    report = response.json()
    assert set(report) == INGEST_FIELDS
    assert report["skipped"] == [] and report["failed"] == []
    by_source = {e["source"]: e for e in report["ingested"]}
    assert sorted(by_source) == list(CORPUS)
    for name, pages in (("field_guide.pdf", 3), ("travel_policy.docx", 3), ("security.md", None)):
        entry = by_source[name]
        assert INGESTED_FIELDS <= entry.keys()
        assert entry["doc_id"] == doc_id_for_file(corpus_dir / name)
        assert entry["path"] == str((index_dir / "uploads" / name).resolve())
        assert entry["pages"] == pages
        assert entry["unchanged"] is False
        assert (index_dir / "uploads" / name).read_bytes() == (corpus_dir / name).read_bytes()
    listed = documents(client)
    assert {d: (r["source"], r["chunks"]) for d, r in listed.items()} == {
        e["doc_id"]: (e["source"], e["chunks"]) for e in report["ingested"]
    }


def test_documents_list_is_empty_before_any_upload(client: TestClient) -> None:
    assert client.get("/v1/documents").json() == {"documents": []}


def test_reuploading_the_same_bytes_changes_nothing(client: TestClient, index_dir: Path) -> None:
    data = MARKDOWN_TEXT.encode()
    first = upload(client, ("security.md", data)).json()["ingested"][0]
    snapshot = (index_dir / "CURRENT").read_text("utf-8")
    second = upload(client, ("security.md", data)).json()["ingested"][0]
    assert second["doc_id"] == first["doc_id"] == doc_id_for_bytes(data)
    assert (first["unchanged"], second["unchanged"]) == (False, True)
    assert second["chunks"] == first["chunks"]
    assert {d: r["chunks"] for d, r in documents(client).items()} == {first["doc_id"]: first["chunks"]}
    assert (index_dir / "CURRENT").read_text("utf-8") == snapshot


def test_a_new_version_under_the_same_name_replaces_the_old(client: TestClient) -> None:
    old = upload(client, ("security.md", MARKDOWN_TEXT.encode())).json()["ingested"][0]
    new_bytes = b"# Visitor Policy\n\nVisitors sign in at the front desk with a photo ID.\n"
    new = upload(client, ("security.md", new_bytes)).json()["ingested"][0]
    assert new["doc_id"] == doc_id_for_bytes(new_bytes) != old["doc_id"]
    assert list(documents(client)) == [new["doc_id"]]
    hits = client.post("/v1/search", json={"query": "passwords sixteen characters", "k": 100}).json()["hits"]
    assert {h["doc_id"] for h in hits} == {new["doc_id"]}


def test_delete_removes_the_document_and_its_chunks(indexed: TestClient, pdf_path: Path) -> None:
    pdf_id = doc_id_for_file(pdf_path)
    before = documents(indexed)
    response = indexed.delete(f"/v1/documents/{pdf_id}")
    assert response.status_code == 200, response.text
    deleted = response.json()["deleted"]
    assert (deleted["doc_id"], deleted["source"], deleted["chunks"]) == (pdf_id, "field_guide.pdf", before[pdf_id]["chunks"])
    assert sorted(documents(indexed)) == sorted(d for d in before if d != pdf_id)
    hits = indexed.post("/v1/search", json={"query": PDF_QUESTION, "k": 100}).json()["hits"]
    assert pdf_id not in {h["doc_id"] for h in hits}
    assert error_of(indexed.delete(f"/v1/documents/{pdf_id}"), 404) == f"no document with doc_id {pdf_id!r} in the index"


def test_delete_of_an_unknown_id_is_404(indexed: TestClient) -> None:
    before = documents(indexed)
    assert error_of(indexed.delete("/v1/documents/0123456789abcdef"), 404) == (
        "no document with doc_id '0123456789abcdef' in the index"
    )
    assert documents(indexed) == before


# --------------------------------------------------------------------------- search and ask

def test_search_returns_located_hits_best_first(indexed: TestClient, pdf_path: Path) -> None:
    response = indexed.post("/v1/search", json={"query": PDF_QUESTION, "k": 3})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"hits"}
    hits = response.json()["hits"]
    assert len(hits) == 3
    for hit in hits:
        assert_located(hit, HIT_FIELDS)
        assert isinstance(hit["score"], float)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert where(hits[0]) == ("field_guide.pdf", 2, 2, None, None, "Acme Pump Field Guide > 2. Maintenance")
    assert hits[0]["doc_id"] == doc_id_for_file(pdf_path)
    assert "Replace the intake filter every 45 days" in hits[0]["text"]


def test_search_markdown_hit_has_lines_and_no_page(indexed: TestClient) -> None:
    [top] = indexed.post("/v1/search", json={"query": MD_QUESTION, "k": 1}).json()["hits"]
    assert where(top) == ("security.md", None, None, 17, 19, "Security Policy > Incidents")


def test_search_k_defaults_to_10_and_caps_the_hits(indexed: TestClient) -> None:
    total = sum(d["chunks"] for d in documents(indexed).values())
    assert total > 5
    default = indexed.post("/v1/search", json={"query": PDF_QUESTION}).json()["hits"]
    assert len(default) == min(10, total)
    assert [len(indexed.post("/v1/search", json={"query": PDF_QUESTION, "k": k}).json()["hits"]) for k in (1, 5)] == [1, 5]


@pytest.mark.parametrize(
    ("question", "expected_where", "phrase"),
    [
        (PDF_QUESTION, ("field_guide.pdf", 2, 2, None, None, "Acme Pump Field Guide > 2. Maintenance"), "every 45 days"),
        (DOCX_QUESTION, ("travel_policy.docx", 3, 3, None, None, "Travel Policy > Approval"), "approval from a director"),
        (MD_QUESTION, ("security.md", None, None, 19, 19, "Security Policy > Incidents"), "extension 4411"),
    ],
    ids=["pdf", "docx", "markdown"],
)
def test_ask_cites_the_page_or_lines_the_answer_is_on(
    indexed: TestClient, question: str, expected_where: tuple[object, ...], phrase: str
) -> None:
    response = indexed.post("/v1/ask", json={"query": question, "k": 5, "backend": "extractive"})
    assert response.status_code == 200, response.text
    out = response.json()
    assert set(out) == {"answer", "grounded", "citations", "hits", "sentences"}
    assert out["grounded"] is True
    # Every sentence of the extractive answer is checked against its citation, and supported.
    assert out["sentences"] and all(s["supported"] for s in out["sentences"])
    assert all(out["answer"][s["start"]:s["end"]] == s["text"] for s in out["sentences"])
    citations = out["citations"]
    assert citations and [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    assert len(out["hits"]) == 5
    hits_by_chunk = {h["chunk_id"]: h for h in out["hits"]}
    for citation in citations:
        assert_located(citation, CITATION_FIELDS)
        assert f"[{citation['n']}]" in out["answer"]
        assert citation["text"] in hits_by_chunk[citation["chunk_id"]]["text"]
    assert where(citations[0]) == expected_where
    assert phrase in citations[0]["text"] and phrase in out["answer"]


def test_ask_without_k_or_backend_uses_the_server_defaults(indexed: TestClient, kb: KnowledgeBase) -> None:
    out = indexed.post("/v1/ask", json={"query": PDF_QUESTION}).json()
    assert len(out["hits"]) == kb.settings.ask_k == 5
    assert where(out["citations"][0])[:3] == ("field_guide.pdf", 2, 2)


def test_ask_says_so_when_the_documents_do_not_answer(indexed: TestClient) -> None:
    out = indexed.post("/v1/ask", json={"query": UNANSWERABLE}).json()
    assert out["grounded"] is False
    assert out["citations"] == []
    assert "[1]" not in out["answer"]


# --------------------------------------------------------------------------- uploads: names, failures, limits

@pytest.mark.parametrize("name", ["../../evil.md", "..\\..\\evil.md", "/etc/evil.md", "uploads/../../../evil.md"])
def test_an_upload_keeps_only_its_base_name_inside_the_uploads_folder(
    client: TestClient, tmp_path: Path, index_dir: Path, name: str
) -> None:
    data = b"# Evil\n\nThis file tried to escape the uploads folder.\n"
    response = upload(client, (name, data))
    assert response.status_code == 200, response.text
    [entry] = response.json()["ingested"]
    assert entry["source"] == "evil.md"
    assert entry["path"] == str((index_dir / "uploads" / "evil.md").resolve())
    assert (index_dir / "uploads" / "evil.md").read_bytes() == data
    assert files_outside(tmp_path, index_dir) == []
    assert not Path("/etc/evil.md").exists()


@pytest.mark.parametrize("name", [".hidden.md", "..", ".", "../..", "a" * 300 + ".md"],
                         ids=["hidden", "dotdot", "dot", "dotdot-dir", "300-chars"])
def test_an_unusable_upload_name_is_400_and_writes_nothing(client: TestClient, tmp_path: Path, index_dir: Path, name: str) -> None:
    message = error_of(upload(client, (name, MARKDOWN_TEXT.encode())), 400)
    assert "upload file name" in message
    assert list((index_dir / "uploads").rglob("*")) == []
    assert files_outside(tmp_path, index_dir) == []
    assert not (index_dir / "CURRENT").exists()


def test_the_same_name_twice_in_one_upload_is_400(client: TestClient, index_dir: Path) -> None:
    response = upload(client, ("a.md", b"# A\n\nalpha\n"), ("a.md", b"# B\n\nbeta\n"))
    assert error_of(response, 400) == "a.md: uploaded more than once in one request"
    assert list((index_dir / "uploads").rglob("*")) == []
    assert documents(client) == {}


def test_a_corrupt_pdf_is_listed_as_failed_and_the_rest_go_in(client: TestClient, index_dir: Path) -> None:
    good = MARKDOWN_TEXT.encode()
    response = upload(client, ("bad.pdf", NOT_A_PDF), ("security.md", good))
    assert response.status_code == 200, response.text
    report = response.json()
    assert [f["path"] for f in report["failed"]] == [str((index_dir / "uploads" / "bad.pdf").resolve())]
    assert "bad.pdf" in report["failed"][0]["error"]
    assert [e["doc_id"] for e in report["ingested"]] == [doc_id_for_bytes(good)]
    assert list(documents(client)) == [doc_id_for_bytes(good)]
    [top] = client.post("/v1/search", json={"query": MD_QUESTION, "k": 1}).json()["hits"]
    assert top["doc_id"] == doc_id_for_bytes(good)


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("bad.docx", b"PK\x03\x04 not a zip archive", "bad.docx"),
        ("empty.md", b"", "empty.md"),
    ],
)
def test_unreadable_uploads_are_failed_entries_not_errors(client: TestClient, name: str, data: bytes, error: str) -> None:
    response = upload(client, (name, data))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ingested"] == [] and report["skipped"] == []
    assert [f["path"].rsplit("/", 1)[-1] for f in report["failed"]] == [name]
    assert error in report["failed"][0]["error"]


def test_an_unsupported_upload_is_skipped(client: TestClient, index_dir: Path) -> None:
    report = upload(client, ("notes.txt", b"plain text")).json()
    assert report == {
        "ingested": [], "failed": [], "removed": [],
        "skipped": [{"path": str((index_dir / "uploads" / "notes.txt").resolve()), "reason": "unsupported file type '.txt'"}],
    }


def test_an_upload_over_the_size_limit_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    with TestClient(create_app(make_kb(index, max_upload_mb=0.001)), raise_server_exceptions=False) as client:
        response = upload(client, ("big.md", b"# Big\n\n" + b"word " * 400))
        assert error_of(response, 413) == "big.md: larger than the 0.001 MiB upload limit"
        assert list((index / "uploads").rglob("*")) == []
        assert documents(client) == {}


def test_an_upload_while_another_writer_holds_the_index_is_409(client: TestClient, kb: KnowledgeBase) -> None:
    with kb.store.writer():
        message = error_of(upload(client, ("security.md", MARKDOWN_TEXT.encode())), 409)
    assert "is being written by another process" in message
    assert documents(client) == {}


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask"])
def test_search_and_ask_before_any_index_are_404(client: TestClient, index_dir: Path, path: str) -> None:
    message = error_of(client.post(path, json={"query": "pump"}), 404)
    assert message.startswith(f"no citekb index at {index_dir}")


def test_an_unknown_backend_is_400(indexed: TestClient) -> None:
    message = error_of(indexed.post("/v1/ask", json={"query": PDF_QUESTION, "backend": "nope"}), 400)
    assert message.startswith("unknown answer backend 'nope'; choose one of ['extractive', ")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/v1/search", {"json": {"query": ""}}, 422),
        ("POST", "/v1/search", {"json": {"query": "   "}}, 422),
        ("POST", "/v1/ask", {"json": {"query": ""}}, 422),
        ("POST", "/v1/ask", {"json": {"query": " \n\t"}}, 422),
        ("POST", "/v1/search", {"json": {"query": "pump", "k": 0}}, 422),
        ("POST", "/v1/search", {"json": {"query": "pump", "k": 101}}, 422),
        ("POST", "/v1/search", {"json": {"query": "pump", "k": "ten"}}, 422),
        ("POST", "/v1/ask", {"json": {"query": "pump", "k": 0}}, 422),
        ("POST", "/v1/search", {"json": {"query": "x" * 4001}}, 422),
        ("POST", "/v1/search", {"json": {}}, 422),
        ("POST", "/v1/search", {"json": ["pump"]}, 422),
        ("POST", "/v1/search", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("POST", "/v1/documents", {}, 422),
        ("POST", "/v1/documents", {"data": {"files": "not a file"}}, 422),
        ("POST", "/v1/documents", {"files": [("files", ("", b"# T\n\nx\n", "text/markdown"))]}, 422),  # no file name: a form field
        ("POST", "/v1/ask", {"json": {"query": "pump", "backend": "nope"}}, 400),
        ("GET", "/v1/nowhere", {}, 404),
        ("PUT", "/v1/search", {}, 405),
    ],
)
def test_bad_requests_get_a_json_error_and_a_4xx(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    error_of(client.request(method, path, **kwargs), status)


def test_a_server_built_with_another_embedding_model_answers_409(indexed: TestClient, index_dir: Path) -> None:
    other = KnowledgeBase(make_kb(index_dir).settings.model_copy(update={"embedding_model": OTHER_HASH_MODEL}),
                          embedder=HashEmbedder(model_id=OTHER_HASH_MODEL))
    with TestClient(create_app(other), raise_server_exceptions=False) as client:
        message = error_of(client.post("/v1/search", json={"query": PDF_QUESTION}), 409)
    assert f"was built with embedding model 'test/hash-embedder', not {OTHER_HASH_MODEL!r}" in message
