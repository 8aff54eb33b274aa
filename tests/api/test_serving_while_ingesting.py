"""A KnowledgeBase serving searches while another one (another process, in production) ingests
into the same index: it answers from the snapshot it has loaded until a new one is published,
then switches to it whole."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings
from citekb.ingest.ids import doc_id_for_file
from citekb.retrieval.store import Snapshot

from api_contract import HASH_MODEL, make_kb
from fakes import HashEmbedder
from tiny_notes import WORDS, assert_aligned, top_doc, write_notes


class HookedEmbedder(HashEmbedder):
    """Runs a callback before each embed call: a place to act in the middle of an ingest."""

    def __init__(self, before_embed: Callable[[int], None]) -> None:
        super().__init__()
        self.before_embed = before_embed

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> NDArray[np.float32]:
        self.before_embed(self.calls + 1)
        return super().embed(texts, show_progress)


def test_a_reader_answers_from_its_snapshot_during_an_ingest_and_sees_the_new_one_after(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder, WORDS[:4])
    first, later = [paths[w] for w in WORDS[:2]], [paths[w] for w in WORDS[2:4]]
    index = tmp_path / "idx"
    make_kb(index).ingest(first)
    reader = make_kb(index)
    before = set(reader.snapshot().documents)
    assert before == {doc_id_for_file(p) for p in first}
    during: list[tuple[set[str], str]] = []

    def query_the_reader(call: int) -> None:
        # Mid-ingest, with a commit already made after the first new file (commit_every_files=1).
        during.append((set(reader.snapshot().documents), top_doc(reader, WORDS[0])))

    writer = KnowledgeBase(Settings(index=index, embedding_model=HASH_MODEL, commit_every_files=1, commit_every_s=0),
                           embedder=HookedEmbedder(query_the_reader))
    writer.ingest(later)

    third = doc_id_for_file(later[0])
    assert during == [(before, doc_id_for_file(first[0])), (before | {third}, doc_id_for_file(first[0]))]
    after = reader.snapshot()
    assert set(after.documents) == before | {doc_id_for_file(p) for p in later}
    assert top_doc(reader, WORDS[3]) == doc_id_for_file(later[1])


def test_a_reader_keeps_its_loaded_snapshot_until_current_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder, WORDS[:2])
    index = tmp_path / "idx"
    make_kb(index).ingest([paths[WORDS[0]]])
    reader = make_kb(index)
    loads: list[str] = []
    original_load = Snapshot.load

    def counting_load(directory: Path, expect_model_id: str | None = None) -> Snapshot:
        loads.append(directory.name)
        return original_load(directory, expect_model_id)

    monkeypatch.setattr(Snapshot, "load", counting_load)
    snapshot = reader.snapshot()
    assert reader.snapshot() is snapshot and reader.search(WORDS[0]) and reader.snapshot() is snapshot
    assert len(loads) == 1
    make_kb(index).ingest([paths[WORDS[1]]])  # this loads the index too, to add to it
    newer = reader.snapshot()
    assert newer is not snapshot and len(newer.documents) == 2
    assert reader.snapshot() is newer
    assert len(loads) == 3


def test_a_reader_whose_snapshot_is_collected_mid_load_gets_the_new_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder, WORDS[:2])
    index = tmp_path / "idx"
    writer = make_kb(index)
    writer.ingest([paths[WORDS[0]]])
    reader = make_kb(index)
    original_load = Snapshot.load
    loads: list[str] = []

    def load_racing_an_ingest(directory: Path, expect_model_id: str | None = None) -> Snapshot:
        loads.append(directory.name)
        if len(loads) == 1:
            monkeypatch.setattr(Snapshot, "load", original_load)  # the writer loads normally
            writer.ingest([paths[WORDS[1]]])  # publishes, then deletes `directory`
            monkeypatch.setattr(Snapshot, "load", load_racing_an_ingest)
        return original_load(directory, expect_model_id)

    monkeypatch.setattr(Snapshot, "load", load_racing_an_ingest)
    snapshot = reader.snapshot()

    assert set(snapshot.documents) == {doc_id_for_file(p) for p in paths.values()}
    assert loads[1] == writer.store.current().name != loads[0]
    assert reader.snapshot() is snapshot  # it recorded the snapshot it loaded, not the one it first read
    assert len(loads) == 2


def test_a_reader_polling_during_an_ingest_sees_each_commit_whole_and_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder, WORDS)
    order = [doc_id_for_file(paths[w]) for w in sorted(WORDS)]  # ingest walks a folder in sorted order
    prefixes = {frozenset(order[:n]) for n in range(1, len(order) + 1)}
    index = tmp_path / "idx"
    make_kb(index).ingest([paths[sorted(WORDS)[0]]])
    reader = make_kb(index)
    writer = make_kb(index, commit_every_files=1, commit_every_s=0)
    done = threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            writer.ingest([folder])
        except BaseException as exc:  # handed to the test thread, which fails with it
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=ingest)
    thread.start()
    seen: list[frozenset[str]] = []
    while not done.is_set():
        snapshot = reader.snapshot()
        documents = frozenset(snapshot.documents)
        assert documents in prefixes
        assert_aligned(snapshot)
        if not seen or seen[-1] != documents:
            assert not seen or seen[-1] < documents  # commits only ever add, in order
            seen.append(documents)
    thread.join(timeout=60)
    assert not thread.is_alive() and errors == []
    assert set(reader.snapshot().documents) == set(order)
