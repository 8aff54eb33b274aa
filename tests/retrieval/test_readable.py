"""Snapshot.readable: the row mask of a reader's access groups. Which document a row belongs to
is kept between calls; who may read a document never is, so a document regrouped in place (as
ingest does) or any change of rows is seen by the very next mask: a stale mask is a leak."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from citekb.retrieval.indexing import ChunkRows
from citekb.retrieval.store import IndexStore, Snapshot

MakeSnapshot = Callable[..., Snapshot]


def grouped(make_snapshot: MakeSnapshot) -> tuple[Snapshot, list[str]]:
    """The tiny snapshot with its documents in groups hr, finance and (the last) none."""
    snapshot = make_snapshot()
    doc_ids = list(snapshot.documents)
    for doc_id, groups in zip(doc_ids, (["hr"], ["finance"], [])):
        snapshot.documents[doc_id].groups = groups
    return snapshot, doc_ids


def readable_docs(snapshot: Snapshot, groups: frozenset[str]) -> set[str]:
    mask = snapshot.readable(groups)
    rows = range(len(snapshot.chunks)) if mask is None else np.flatnonzero(mask)
    return {snapshot.chunks[i].locator.doc_id for i in rows}


def expected(snapshot: Snapshot, groups: frozenset[str]) -> list[bool]:
    """The mask worked out from scratch, row by row."""
    docs = snapshot.documents
    return [not docs[c.locator.doc_id].groups or bool(groups & set(docs[c.locator.doc_id].groups)) for c in snapshot.chunks]


def test_mask_follows_groups(make_snapshot: MakeSnapshot) -> None:
    snapshot, (hr, finance, public) = grouped(make_snapshot)
    assert snapshot.readable(None) is None
    assert readable_docs(snapshot, frozenset({"hr"})) == {hr, public}
    assert readable_docs(snapshot, frozenset({"finance", "it"})) == {finance, public}
    assert readable_docs(snapshot, frozenset()) == {public}
    assert snapshot.readable(frozenset({"hr", "finance"})) is None  # every row: no mask at all
    for groups in (frozenset({"hr"}), frozenset({"it"})):
        assert snapshot.readable(groups).tolist() == expected(snapshot, groups)


def test_a_document_regrouped_in_place_is_hidden_at_once(make_snapshot: MakeSnapshot) -> None:
    snapshot, (hr, _, _) = grouped(make_snapshot)
    reader = frozenset({"hr"})
    assert hr in readable_docs(snapshot, reader)  # the rows' documents are now cached
    snapshot.documents[hr].groups = ["legal"]  # what KnowledgeBase._ingest_file does on regrouping
    assert hr not in readable_docs(snapshot, reader)
    snapshot.documents[hr].groups.append("hr")  # even an edit of the list itself
    assert hr in readable_docs(snapshot, reader)


def test_mask_follows_rows_through_every_change(make_snapshot: MakeSnapshot, tmp_path: Path) -> None:
    snapshot, (hr, finance, public) = grouped(make_snapshot)
    reader = frozenset({"finance"})
    assert readable_docs(snapshot, reader) == {finance, public}
    removed = snapshot.remove(finance)
    mask = snapshot.readable(reader)
    assert len(mask) == len(snapshot.chunks) and mask.tolist() == expected(snapshot, reader)
    # Added back (last rows now), then moved: the cached rows must follow each time.
    fresh = make_snapshot()
    chunks = [c for c in fresh.chunks if c.locator.doc_id == finance]
    rows_of = np.flatnonzero([c.locator.doc_id == finance for c in fresh.chunks])
    owners = np.flatnonzero(np.isin(fresh.dense._owner, rows_of))
    snapshot.add(removed, chunks, ChunkRows(vectors=fresh.dense.vectors()[owners],
                                            owners=fresh.dense._owner[owners] - rows_of[0],
                                            terms=[["x"]] * len(chunks)))
    assert snapshot.readable(reader).tolist() == expected(snapshot, reader)
    assert readable_docs(snapshot, reader) == {finance, public}
    snapshot.relocate(hr, tmp_path / "moved.pdf")
    assert snapshot.readable(frozenset({"hr"})).tolist() == expected(snapshot, frozenset({"hr"}))
    # A list swapped for another of the same length (as a loader or a benchmark does).
    snapshot.readable(reader)
    snapshot.chunks = list(reversed(snapshot.chunks))
    assert snapshot.readable(reader).tolist() == expected(snapshot, reader)


def test_a_loaded_snapshot_masks_like_the_saved_one(make_snapshot: MakeSnapshot, tmp_path: Path) -> None:
    snapshot, _ = grouped(make_snapshot)
    store = IndexStore(tmp_path / "index")
    store.publish(snapshot)
    loaded = store.load()
    for groups in (frozenset({"hr"}), frozenset({"finance"}), frozenset()):
        assert loaded.readable(groups).tolist() == snapshot.readable(groups).tolist() == expected(snapshot, groups)
