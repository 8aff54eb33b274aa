from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from citekb.ingest.errors import CitekbError, DocumentNotFoundError, IndexMismatchError, IndexNotFoundError
from citekb.retrieval import store as store_module
from citekb.retrieval.analyze import analyze
from citekb.retrieval.indexing import prepare
from citekb.retrieval.store import FORMAT_VERSION, IndexStore, Snapshot

from fakes import HashEmbedder
from tiny_index import record_for

MakeSnapshot = Callable[..., Snapshot]


def doc_ids(snapshot: Snapshot) -> list[str]:
    return [c.locator.doc_id for c in snapshot.chunks]


def best_chunk_for(snapshot: Snapshot, query: str) -> tuple[str, str]:
    """(bm25 best chunk_id, dense best chunk_id) for a query."""
    bm25_row = snapshot.keyword.search(analyze(query), 1)[0][0]
    dense_row = snapshot.dense.search(HashEmbedder().embed([query])[0], 1)[0][0]
    return snapshot.chunks[bm25_row].chunk_id, snapshot.chunks[dense_row].chunk_id


def assert_aligned(snapshot: Snapshot) -> None:
    assert len(snapshot.chunks) == len(snapshot.dense) == len(snapshot.keyword)
    assert {c.locator.doc_id for c in snapshot.chunks} == set(snapshot.documents)
    for doc_id, record in snapshot.documents.items():
        assert record.chunks == doc_ids(snapshot).count(doc_id)


def test_add_keeps_stores_row_aligned(make_snapshot: MakeSnapshot, tiny_documents: list) -> None:
    snapshot = make_snapshot()
    assert_aligned(snapshot)
    assert len(snapshot.chunks) == sum(len(chunks) for _, chunks in tiny_documents)
    assert snapshot.model_id == "test/hash-embedder" and snapshot.dim == 64
    # Both legs agree on which chunk is about the intake filter.
    filter_chunk = next(c for _, cs in tiny_documents for c in cs if "intake filter" in c.text)
    assert best_chunk_for(snapshot, "replace intake filter every 45 days") == (filter_chunk.chunk_id,) * 2


def test_remove_drops_a_documents_rows_from_every_store(make_snapshot: MakeSnapshot, tiny_documents: list) -> None:
    snapshot = make_snapshot()
    pdf, docx, md = (document for document, _ in tiny_documents)
    record = snapshot.remove(docx.doc_id)
    assert record.doc_id == docx.doc_id and record.source == docx.source
    assert_aligned(snapshot)
    assert set(doc_ids(snapshot)) == {pdf.doc_id, md.doc_id}
    # Rows were renumbered in step: searches still land on the right chunk.
    laptop = next(c for c in tiny_documents[2][1] if "disk encryption" in c.text)
    assert best_chunk_for(snapshot, "laptops full disk encryption") == (laptop.chunk_id,) * 2
    assert snapshot.keyword.search(analyze("Globetrek economy flights"), 5) == []
    with pytest.raises(DocumentNotFoundError, match=docx.doc_id):
        snapshot.remove(docx.doc_id)


def test_adding_a_document_again_replaces_it(make_snapshot: MakeSnapshot, tiny_documents: list) -> None:
    snapshot = make_snapshot()
    before = len(snapshot.chunks)
    document, chunks = tiny_documents[0]
    snapshot.add(record_for(document, chunks), chunks, prepare(chunks, HashEmbedder()))
    assert len(snapshot.chunks) == before
    assert_aligned(snapshot)
    assert doc_ids(snapshot)[-len(chunks):] == [document.doc_id] * len(chunks)


def test_find_path(make_snapshot: MakeSnapshot, tiny_documents: list) -> None:
    snapshot = make_snapshot()
    docx = tiny_documents[1][0]
    assert snapshot.find_path(f"/docs/{docx.source}").doc_id == docx.doc_id
    assert snapshot.find_path("/docs/missing.pdf") is None


def test_save_load_round_trip(make_snapshot: MakeSnapshot, tmp_path: Path) -> None:
    snapshot = make_snapshot()
    snapshot.save(tmp_path / "snap")
    loaded = Snapshot.load(tmp_path / "snap", expect_model_id="test/hash-embedder")
    assert loaded.chunks == snapshot.chunks  # text, locators with sections and boxes, spans
    assert loaded.documents == snapshot.documents
    assert (loaded.model_id, loaded.dim, loaded.created) == (snapshot.model_id, snapshot.dim, snapshot.created)
    assert any(c.locator.bboxes for c in loaded.chunks) and any(c.locator.line_start for c in loaded.chunks)
    query_terms = analyze("pump warranty receipt")
    np.testing.assert_allclose(loaded.keyword.scores(query_terms), snapshot.keyword.scores(query_terms), atol=1e-6)
    query = HashEmbedder().embed(["pump warranty receipt"])[0]
    assert loaded.dense.search(query, 5) == snapshot.dense.search(query, 5)
    manifest = json.loads((tmp_path / "snap" / "manifest.json").read_text("utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedding"] == {"model_id": "test/hash-embedder", "dim": 64}
    assert manifest["counts"] == {"documents": 3, "chunks": len(snapshot.chunks)}


def test_publish_points_current_at_a_complete_snapshot(make_snapshot: MakeSnapshot, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    assert not store.exists
    snapshot = make_snapshot()
    with store.writer():
        published = store.publish(snapshot)
    assert store.exists
    assert store.current() == published
    assert (tmp_path / "index" / "CURRENT").read_text("utf-8") == published.name + "\n"
    files = {p.name for p in published.iterdir()}
    assert files >= {"manifest.json", "docs.json", "chunks.jsonl", "bm25.json", "bm25_tf.npz", "dense.faiss"}
    assert store.load().chunks == snapshot.chunks
    assert not list((tmp_path / "index").glob("CURRENT.tmp"))


def test_publish_replaces_and_collects_the_previous_snapshot(
    make_snapshot: MakeSnapshot, tiny_documents: list, tmp_path: Path
) -> None:
    store = IndexStore(tmp_path / "index")
    snapshot = make_snapshot()
    with store.writer():
        first = store.publish(snapshot)
        snapshot.remove(tiny_documents[0][0].doc_id)
        second = store.publish(snapshot)
    assert first != second and not first.exists()
    assert [p.name for p in (tmp_path / "index" / "snapshots").iterdir()] == [second.name]
    assert len(store.load().documents) == 2


def test_a_crash_before_the_rename_leaves_the_last_snapshot_current(
    make_snapshot: MakeSnapshot, tiny_documents: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(tmp_path / "index")
    snapshot = make_snapshot()
    with store.writer():
        committed = store.publish(snapshot)

    def crash(directory: Path) -> None:
        raise OSError("disk full")

    snapshot.remove(tiny_documents[0][0].doc_id)
    monkeypatch.setattr(store_module, "_fsync_tree", crash)
    with store.writer(), pytest.raises(OSError, match="disk full"):
        store.publish(snapshot)
    monkeypatch.undo()

    staging = list((tmp_path / "index" / "snapshots").glob(".tmp-*"))
    assert len(staging) == 1  # the unfinished snapshot is still there...
    assert store.current() == committed  # ...but CURRENT never moved
    assert len(store.load().documents) == 3

    with store.writer():
        latest = store.publish(snapshot)
    assert not staging[0].exists()
    assert [p.name for p in (tmp_path / "index" / "snapshots").iterdir()] == [latest.name]
    assert len(store.load().documents) == 2


def test_a_leftover_staging_dir_is_ignored_and_cleaned(make_snapshot: MakeSnapshot, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    with store.writer():
        store.publish(make_snapshot())
    leftover = tmp_path / "index" / "snapshots" / ".tmp-20240101T000000-deadbeef"
    leftover.mkdir()
    (leftover / "chunks.jsonl").write_text('{"half": ', "utf-8")  # no manifest: never finished
    assert len(store.load().documents) == 3
    with store.writer():
        store.publish(make_snapshot())
    assert not leftover.exists()


def test_loading_with_another_embedding_model_raises_index_mismatch(make_snapshot: MakeSnapshot, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    with store.writer():
        store.publish(make_snapshot())
    with pytest.raises(IndexMismatchError) as info:
        store.load(expect_model_id="sentence-transformers/all-MiniLM-L6-v2")
    message = str(info.value)
    assert "'test/hash-embedder'" in message and "'sentence-transformers/all-MiniLM-L6-v2'" in message
    assert str(tmp_path / "index") in message and "re-ingest" in message
    assert store.load(expect_model_id="test/hash-embedder").model_id == "test/hash-embedder"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format_version": FORMAT_VERSION + 1}, "format version"),
        ({"analyzer": "another-analyzer"}, "another text analyzer"),
    ],
)
def test_a_snapshot_built_differently_raises_index_mismatch(
    make_snapshot: MakeSnapshot, tmp_path: Path, change: dict[str, object], match: str
) -> None:
    make_snapshot().save(tmp_path / "snap")
    manifest_path = tmp_path / "snap" / "manifest.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text("utf-8")), **change}), "utf-8")
    with pytest.raises(IndexMismatchError, match=match):
        Snapshot.load(tmp_path / "snap")


def test_a_snapshot_without_manifest_raises_index_mismatch(make_snapshot: MakeSnapshot, tmp_path: Path) -> None:
    make_snapshot().save(tmp_path / "snap")
    (tmp_path / "snap" / "manifest.json").unlink()
    with pytest.raises(IndexMismatchError, match="no readable manifest"):
        Snapshot.load(tmp_path / "snap")


def test_missing_index_raises_index_not_found(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "nothing-here")
    with pytest.raises(IndexNotFoundError, match=r"no citekb index at .*nothing-here: run `citekb ingest"):
        store.load()


def test_a_second_writer_is_refused_while_the_lock_is_held(tmp_path: Path) -> None:
    first, second = IndexStore(tmp_path / "index"), IndexStore(tmp_path / "index")
    with first.writer():
        with pytest.raises(CitekbError, match="being written by another process"):
            with second.writer():
                pass
    with second.writer():  # released: the next writer gets it
        pass


def test_prepare_embeds_a_sentence_shared_by_two_chunks_once() -> None:
    from citekb.ingest.document import Chunk, Locator, Span
    from citekb.retrieval.indexing import dense_units

    def chunk(i: int, text: str) -> Chunk:
        return Chunk(chunk_id=f"d:{i}", text=text, locator=Locator(doc_id="d", source="d.md", title="D"),
                     spans=(Span(0, len(text), None, None, None),))

    chunks = [chunk(0, "Leave is 27 days. The pump filter is replaced monthly."),
              chunk(1, "The pump filter is replaced monthly. Warranty lasts two years.")]
    seen: list[list[str]] = []

    class Recording(HashEmbedder):
        def embed(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
            seen.append(list(texts))
            return super().embed(texts, show_progress)

    rows = prepare(chunks, Recording())
    units = [u for c in chunks for u in dense_units(c)]
    assert len(units) == 4 and seen == [list(dict.fromkeys(units))]  # 3 distinct sentences, one call
    assert rows.owners.tolist() == [0, 0, 1, 1]
    assert np.array_equal(rows.vectors, HashEmbedder().embed(units))
    assert rows.terms == [analyze(c.text) for c in chunks]


def test_prepare_embeds_no_unit_in_a_language_the_embedder_does_not_read() -> None:
    """A Chinese sentence gets no vector from an English-only embedder (its chunk is still found
    by keywords); an embedder that reads Chinese gets every unit."""
    from citekb.ingest.document import Chunk, Locator, Span

    text = "Leave is 27 days. 年假为二十七天。"
    chunks = [Chunk(chunk_id="d:0", text=text, locator=Locator(doc_id="d", source="d.md", title="D"),
                    spans=(Span(0, len(text), None, None, None),))]
    english = prepare(chunks, HashEmbedder(languages=("en",)))
    assert len(english.vectors) == 1 and english.owners.tolist() == [0]
    assert np.array_equal(english.vectors, HashEmbedder().embed(["Leave is 27 days."]))
    assert english.terms == [analyze(text)]
    both = prepare(chunks, HashEmbedder())
    assert len(both.vectors) == 2 and both.owners.tolist() == [0, 0]
