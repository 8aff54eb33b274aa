"""Readers of an index directory while a writer publishes: a reader either gets a whole
snapshot or retries on the one that replaced it, and a crashed writer's leftovers are harmless."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from citekb.retrieval.store import IndexStore, Snapshot

MakeSnapshot = Callable[..., Snapshot]


def assert_whole(snapshot: Snapshot) -> None:
    assert len(snapshot.chunks) == len(snapshot.dense) == len(snapshot.keyword)
    assert {c.locator.doc_id for c in snapshot.chunks} == set(snapshot.documents)
    for doc_id, record in snapshot.documents.items():
        assert sum(c.locator.doc_id == doc_id for c in snapshot.chunks) == record.chunks


def test_a_reader_whose_snapshot_is_collected_mid_load_reads_current_again(
    make_snapshot: MakeSnapshot, tiny_documents: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "index"
    reader, writer = IndexStore(root), IndexStore(root)
    full = make_snapshot()
    with writer.writer():
        first = writer.publish(full)
    smaller = make_snapshot()
    smaller.remove(tiny_documents[0][0].doc_id)
    original_load = Snapshot.load
    loaded_from: list[str] = []

    def load_racing_a_publish(directory: Path, expect_model_id: str | None = None) -> Snapshot:
        # The reader has read CURRENT (directory); before it opens a file, the writer publishes
        # and collects that very directory.
        loaded_from.append(directory.name)
        if len(loaded_from) == 1:
            with writer.writer():
                writer.publish(smaller)
            assert not directory.exists()
        return original_load(directory, expect_model_id)

    monkeypatch.setattr(Snapshot, "load", load_racing_a_publish)
    path, snapshot = reader.load_current()

    assert loaded_from == [first.name, path.name] and path != first
    assert path == reader.current()
    assert set(snapshot.documents) == set(smaller.documents)
    assert_whole(snapshot)


def test_a_damaged_snapshot_that_is_still_current_raises_instead_of_retrying(
    make_snapshot: MakeSnapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IndexStore(tmp_path / "index")
    with store.writer():
        published = store.publish(make_snapshot())
    (published / "bm25_tf.npz").unlink()
    attempts: list[Path] = []
    original_load = Snapshot.load

    def counting_load(directory: Path, expect_model_id: str | None = None) -> Snapshot:
        attempts.append(directory)
        return original_load(directory, expect_model_id)

    monkeypatch.setattr(Snapshot, "load", counting_load)
    with pytest.raises(FileNotFoundError, match="bm25_tf.npz"):
        store.load()
    assert attempts == [published]


def test_a_crashed_writers_leftovers_are_ignored_and_cleaned(make_snapshot: MakeSnapshot, tiny_documents: list, tmp_path: Path) -> None:
    root = tmp_path / "index"
    store = IndexStore(root)
    with store.writer():
        committed = store.publish(make_snapshot())
    snapshots = root / "snapshots"
    # A writer killed at three different moments of publish():
    staging = snapshots / ".tmp-20240101T000000-deadbeef"  # while saving: no manifest yet
    staging.mkdir()
    (staging / "chunks.jsonl").write_text('{"chunk_id": "x', "utf-8")
    unpublished = snapshots / "20240101T000001-cafebabe"  # renamed into place, CURRENT not yet flipped
    smaller = make_snapshot()
    smaller.remove(tiny_documents[1][0].doc_id)
    smaller.save(unpublished)
    (root / "CURRENT.tmp").write_text("20240101T000001-cafeb", "utf-8")  # the pointer half written

    assert store.current() == committed
    assert_whole(store.load())
    assert len(store.load().documents) == 3

    with store.writer():
        latest = store.publish(smaller)
    assert sorted(p.name for p in snapshots.iterdir()) == [latest.name]
    assert not (root / "CURRENT.tmp").exists()
    assert (root / "CURRENT").read_text("utf-8") == latest.name + "\n"
    assert set(store.load().documents) == set(smaller.documents)


def test_readers_polling_during_many_publishes_only_ever_see_whole_snapshots(
    make_snapshot: MakeSnapshot, tiny_documents: list, tmp_path: Path
) -> None:
    root = tmp_path / "index"
    full = make_snapshot()
    partial = make_snapshot()
    partial.remove(tiny_documents[2][0].doc_id)
    allowed = {frozenset(full.documents), frozenset(partial.documents)}
    with IndexStore(root).writer():
        IndexStore(root).publish(full)
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        writer = IndexStore(root)
        try:
            with writer.writer():
                for i in range(20):
                    writer.publish(partial if i % 2 else full)
        except BaseException as exc:  # handed to the test thread, which fails with it
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    reader = IndexStore(root)
    seen = 0
    while not done.is_set() or seen == 0:
        snapshot = reader.load()
        assert frozenset(snapshot.documents) in allowed
        assert_whole(snapshot)
        seen += 1
    thread.join(timeout=60)
    assert not thread.is_alive() and errors == []
    assert set(reader.load().documents) == set(partial.documents)  # the last of the 20 (i = 19)
