"""`citekb check` and `citekb repair` on deliberately damaged snapshots of the tiny corpus.

Each test breaks one thing in the live snapshot's directory, checks that `check` names exactly
that, and that `repair` publishes a snapshot equal to the undamaged one, doing no more work
than the damage needs (counted in embed calls)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from citekb.api.kb import KnowledgeBase, RemovedFile
from citekb.ingest.errors import IndexMismatchError
from citekb.ingest.ids import doc_id_for_file
from citekb.retrieval.analyze import analyze
from citekb.retrieval.store import IndexStore, Snapshot

from api_contract import MD_QUESTION, OTHER_HASH_MODEL, RunCli, make_kb
from fakes import HashEmbedder
from tiny_notes import assert_aligned

QUERY = "replace the intake filter and pump warranty receipt"


@pytest.fixture
def docs(corpus_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny corpus, so a test may change or delete its files."""
    folder = tmp_path / "docs"
    shutil.copytree(corpus_dir, folder)
    return folder


@pytest.fixture
def kb(docs: Path, tmp_path: Path) -> KnowledgeBase:
    kb = make_kb(tmp_path / "idx")
    assert kb.ingest([docs]).failed == []
    return kb


def live(kb: KnowledgeBase) -> Path:
    return kb.store.current()


def kinds(kb: KnowledgeBase, files: bool = True) -> list[str]:
    return sorted(p.kind for p in kb.check(files=files).problems)


def assert_same_index(repaired: Snapshot, original: Snapshot) -> None:
    """Same chunks in the same order, same documents, and both legs score a query the same."""
    assert repaired.chunks == original.chunks
    assert repaired.documents == original.documents
    assert_aligned(repaired)
    terms = analyze(QUERY)
    np.testing.assert_allclose(repaired.keyword.scores(terms), original.keyword.scores(terms), rtol=1e-5)
    query = HashEmbedder().embed([QUERY])[0]
    assert [row for row, _ in repaired.dense.search(query, 10)] == [row for row, _ in original.dense.search(query, 10)]
    np.testing.assert_allclose(repaired.dense.vectors(), original.dense.vectors(), atol=1e-6)


def test_a_sound_index_is_healthy_and_repair_publishes_nothing(kb: KnowledgeBase) -> None:
    original = kb.store.load()
    report = kb.check()
    assert (report.healthy, report.problems) == (True, [])
    assert (report.snapshot, report.documents, report.chunks) == (live(kb).name, 3, len(original.chunks))
    before = live(kb)
    repaired = kb.repair()
    assert (repaired.published, repaired.actions, repaired.dropped, repaired.remaining) == (None, [], [], [])
    assert live(kb) == before


def test_a_missing_bm25_matrix_is_rebuilt_from_the_chunks_without_embedding(kb: KnowledgeBase) -> None:
    original = kb.store.load()
    (live(kb) / "bm25_tf.npz").unlink()
    [problem] = kb.check().problems
    assert problem.kind == "keyword" and "bm25_tf.npz" in problem.message

    calls = kb.embedder.calls  # type: ignore[attr-defined]
    report = kb.repair()

    assert kb.embedder.calls == calls  # type: ignore[attr-defined]
    assert report.actions == [f"rebuilt the keyword index from the text of {len(original.chunks)} chunk(s)"]
    assert report.published == live(kb).name and report.dropped == []
    assert kb.check().healthy
    assert_same_index(kb.store.load(), original)


def test_a_missing_dense_index_is_embedded_again(kb: KnowledgeBase) -> None:
    original = kb.store.load()
    (live(kb) / "dense.faiss").unlink()
    assert kinds(kb) == ["dense"]
    calls = kb.embedder.calls  # type: ignore[attr-defined]
    report = kb.repair()
    assert kb.embedder.calls > calls  # type: ignore[attr-defined]
    assert report.actions == [f"re-embedded {len(original.chunks)} chunk(s) into a new dense index"]
    assert kb.check().healthy
    assert_same_index(kb.store.load(), original)


def test_a_truncated_chunks_file_loses_one_document_which_is_ingested_again_from_its_file(kb: KnowledgeBase) -> None:
    original = kb.store.load()
    chunks_file = live(kb) / "chunks.jsonl"
    data = chunks_file.read_bytes()
    chunks_file.write_bytes(data[: len(data) - len(data.splitlines()[-1]) // 2 - 1])  # the last line cut in half
    last = original.chunks[-1].locator.doc_id
    record = original.documents[last]

    report = kb.check()
    assert sorted(p.kind for p in report.problems) == ["chunks", "counts", "dense", "document-chunks", "keyword"]
    [incomplete] = [p for p in report.problems if p.kind == "document-chunks"]
    assert (incomplete.doc_id, incomplete.path) == (last, record.path)
    assert report.chunks == len(original.chunks) - 1

    calls = kb.embedder.calls  # type: ignore[attr-defined]
    repaired = kb.repair()

    # The other documents' rows are kept as they were; only the damaged document is embedded again.
    assert kb.embedder.calls == calls + 1  # type: ignore[attr-defined]
    assert repaired.actions == [
        f"dropped {record.source} ({last}): {record.chunks - 1} of its {record.chunks} chunk(s) remain",
        f"ingested {record.path} ({last}) again",
    ]
    assert repaired.dropped == []
    assert kb.check().healthy
    snapshot = kb.store.load()
    for doc_id in original.documents:  # re-ingesting records a new time; all else is equal
        snapshot.documents[doc_id].ingested_at = original.documents[doc_id].ingested_at
    assert_same_index(snapshot, original)


def test_a_document_with_lost_chunks_whose_file_is_gone_is_dropped_and_reported(kb: KnowledgeBase) -> None:
    original = kb.store.load()
    chunks_file = live(kb) / "chunks.jsonl"
    lines = chunks_file.read_text("utf-8").splitlines(keepends=True)
    chunks_file.write_text("".join(lines[:-1]), "utf-8")  # the last chunk gone whole
    last = original.chunks[-1].locator.doc_id
    record = original.documents[last]
    Path(record.path).unlink()

    repaired = kb.repair()

    assert repaired.dropped == [RemovedFile(record.path, last)]
    assert repaired.actions[-1].startswith(f"lost {record.source} ({last}): {record.path} is gone or has changed")
    assert repaired.remaining == []  # the lost document's missing file is no longer the index's concern
    snapshot = kb.store.load()
    assert set(snapshot.documents) == set(original.documents) - {last}
    assert_aligned(snapshot)
    assert kb.check().healthy


def test_chunks_of_a_document_missing_from_docs_json_are_dropped(kb: KnowledgeBase) -> None:
    original = kb.store.load()
    docs_file = live(kb) / "docs.json"
    records = json.loads(docs_file.read_text("utf-8"))
    orphan = next(iter(records))
    del records[orphan]
    docs_file.write_text(json.dumps(records), "utf-8")

    report = kb.check()
    assert sorted((p.kind, p.doc_id) for p in report.problems) == [("counts", None), ("orphan-chunks", orphan)]

    calls = kb.embedder.calls  # type: ignore[attr-defined]
    repaired = kb.repair()
    assert kb.embedder.calls == calls  # type: ignore[attr-defined]
    dropped = sum(c.locator.doc_id == orphan for c in original.chunks)
    assert repaired.actions == [f"dropped {dropped} chunk(s) of unknown document {orphan}"]
    snapshot = kb.store.load()
    assert set(snapshot.documents) == set(original.documents) - {orphan}
    assert len(snapshot.chunks) == len(original.chunks) - dropped
    assert_aligned(snapshot)
    assert kb.check().healthy


def test_a_missing_manifest_means_rebuilding_both_legs(kb: KnowledgeBase) -> None:
    original = kb.store.load()
    (live(kb) / "manifest.json").unlink()
    assert kinds(kb) == ["manifest"]
    report = kb.repair()
    n = len(original.chunks)
    assert report.actions == [f"re-embedded {n} chunk(s) into a new dense index", f"rebuilt the keyword index from the text of {n} chunk(s)"]
    assert kb.check().healthy
    assert_same_index(kb.store.load(), original)


def test_changed_and_missing_files_are_reported_but_not_repaired(kb: KnowledgeBase, docs: Path) -> None:
    changed, missing = docs / "security.md", docs / "field_guide.pdf"
    old_changed, old_missing = doc_id_for_file(changed), doc_id_for_file(missing)
    changed.write_text(changed.read_text("utf-8") + "\nOne more line.\n", "utf-8")
    missing.unlink()

    report = kb.check()
    assert not report.healthy
    assert sorted((p.kind, p.doc_id, p.path) for p in report.problems) == [
        ("file-changed", old_changed, str(changed.resolve())), ("file-missing", old_missing, str(missing.resolve()))]
    assert kb.check(files=False).healthy
    before = live(kb)
    repaired = kb.repair()
    assert (repaired.published, repaired.actions) == (None, [])
    assert sorted(p.kind for p in repaired.remaining) == ["file-changed", "file-missing"]
    assert live(kb) == before


def test_repair_refuses_an_index_built_with_another_model(kb: KnowledgeBase, tmp_path: Path) -> None:
    other = KnowledgeBase(kb.settings.model_copy(update={"embedding_model": OTHER_HASH_MODEL}),
                          embedder=HashEmbedder(model_id=OTHER_HASH_MODEL))
    assert [p.kind for p in other.check().problems] == ["model"]
    with pytest.raises(IndexMismatchError, match="'test/hash-embedder', not 'test/other-hash-embedder'"):
        other.repair()


def test_a_snapshot_superseded_while_checked_is_checked_again(kb: KnowledgeBase, docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from citekb.api import kb as kb_module

    original_read = kb_module.read_parts
    read: list[str] = []

    def read_racing_a_delete(directory: Path):  # type: ignore[no-untyped-def]
        read.append(directory.name)
        if len(read) == 1:
            kb.delete(next(iter(kb.store.load().documents)))  # publishes, then removes `directory`
        return original_read(directory)

    monkeypatch.setattr(kb_module, "read_parts", read_racing_a_delete)
    report = kb.check()
    assert report.problems == [] and report.documents == 2
    assert read[1] == report.snapshot != read[0]


# --------------------------------------------------------------------------- CLI

def test_cli_check_and_repair(run_cli: RunCli, docs: Path, tmp_path: Path) -> None:
    index = tmp_path / "cli-idx"
    assert run_cli("ingest", docs, "--index", index, "--json").exit_code == 0
    healthy = run_cli("check", "--index", index, "--json")
    assert healthy.exit_code == 0, healthy.stderr
    report = healthy.json()
    assert set(report) == {"healthy", "index", "snapshot", "documents", "chunks", "problems"}
    assert (report["healthy"], report["problems"], report["documents"]) == (True, [], 3)
    assert report["snapshot"] == IndexStore(index).current().name
    assert run_cli("check", "--index", index).stdout.endswith("healthy\n")

    (IndexStore(index).current() / "bm25_tf.npz").unlink()
    damaged = run_cli("check", "--index", index, "--json")
    assert damaged.exit_code == 1
    [problem] = damaged.json()["problems"]
    assert (problem["kind"], problem["doc_id"], problem["path"]) == ("keyword", None, None)
    text = run_cli("check", "--index", index)
    assert text.exit_code == 1
    assert "problem  keyword: " in text.stdout and "`citekb repair`" in text.stderr

    repaired = run_cli("repair", "--index", index, "--json")
    assert repaired.exit_code == 0, repaired.stderr
    body = repaired.json()
    assert body["published"] == IndexStore(index).current().name
    assert body["dropped"] == [] and body["remaining"] == []
    assert body["actions"] == [f"rebuilt the keyword index from the text of {report['chunks']} chunk(s)"]
    assert run_cli("check", "--index", index).exit_code == 0
    hits = run_cli("search", MD_QUESTION, "--k", "1", "--index", index, "--json").json()["hits"]
    assert hits[0]["doc_id"] == doc_id_for_file(docs / "security.md")
    again = run_cli("repair", "--index", index)
    assert (again.exit_code, again.stdout) == (0, "nothing to repair\n")


def test_cli_check_without_an_index_exits_1(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("check", "--index", tmp_path / "nothing", "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert "no citekb index at" in result.stderr
    assert run_cli("repair", "--index", tmp_path / "nothing").exit_code == 1
    assert not (tmp_path / "nothing").exists()
