"""`ingest --sync` and commits during long ingests, through KnowledgeBase and the CLI.

Sync makes the index mirror a folder: new files go in, changed ones replace their old chunks,
and documents whose files are gone leave every store. Unchanged files cost nothing: no
extraction and no embedding, counted on the fakes rather than timed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from citekb.api.kb import KnowledgeBase, RemovedFile
from citekb.api.settings import Settings
from citekb.ingest.extract.markdown import MarkdownExtractor
from citekb.ingest.ids import doc_id_for_file
from citekb.retrieval.analyze import analyze
from citekb.retrieval.store import IndexStore, Snapshot

from api_contract import HASH_MODEL, RunCli
from fakes import HashEmbedder
from tiny_notes import WORDS, RecordingExtractor, assert_aligned, note, top_doc, write_notes


def counting_kb(index: Path, **settings: object) -> tuple[KnowledgeBase, HashEmbedder, RecordingExtractor]:
    """A KnowledgeBase whose embedder counts its calls and whose extractors log what they read."""
    embedder = HashEmbedder()
    recorder = RecordingExtractor(MarkdownExtractor(), index.parent / f"{index.name}-extracted.log")
    kb = KnowledgeBase(Settings(index=index, embedding_model=HASH_MODEL, **settings), embedder=embedder, extractors=[recorder])
    return kb, embedder, recorder


# --------------------------------------------------------------------------- sync

def test_sync_with_nothing_changed_extracts_embeds_and_publishes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_notes(folder)
    kb, embedder, recorder = counting_kb(tmp_path / "idx")
    first = kb.ingest([folder], sync=True)
    assert [e.unchanged for e in first.ingested] == [False] * 3
    assert (embedder.calls, len(recorder.extracted())) == (3, 3)
    committed = kb.store.current()

    again = kb.ingest([folder], sync=True)

    assert (embedder.calls, len(recorder.extracted())) == (3, 3)  # not one more of either
    assert [e.unchanged for e in again.ingested] == [True] * 3
    assert [(e.doc_id, e.chunks) for e in again.ingested] == [(e.doc_id, e.chunks) for e in first.ingested]
    assert again.removed == [] and again.failed == []
    assert kb.store.current() == committed  # no new snapshot was published


def test_sync_adds_new_files_replaces_changed_ones_and_removes_deleted_ones(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder, WORDS[:3])
    kb, embedder, recorder = counting_kb(tmp_path / "idx")
    kb.ingest([folder])
    old = {word: doc_id_for_file(path) for word, path in paths.items()}
    alder, bramble, cinder = WORDS[:3]

    paths[bramble].write_text(note(bramble, version=2), "utf-8")  # changed
    paths[cinder].unlink()  # deleted
    added = write_notes(folder, (WORDS[3],))[WORDS[3]]  # new
    calls = embedder.calls
    report = kb.ingest([folder], sync=True)

    assert embedder.calls - calls == 2  # the changed file and the new one; the unchanged one is free
    assert recorder.extracted() == sorted([f"{alder}.md", f"{bramble}.md", f"{cinder}.md", f"{bramble}.md", added.name])
    new_bramble = doc_id_for_file(paths[bramble])
    assert new_bramble != old[bramble]
    assert [(Path(e.path).name, e.doc_id, e.unchanged) for e in report.ingested] == [
        (f"{alder}.md", old[alder], True), (f"{bramble}.md", new_bramble, False), (added.name, doc_id_for_file(added), False)]
    assert report.removed == [RemovedFile(str(paths[cinder].resolve()), old[cinder])]

    snapshot = IndexStore(tmp_path / "idx").load()
    assert set(snapshot.documents) == {old[alder], new_bramble, doc_id_for_file(added)}
    assert_aligned(snapshot)
    # The deleted file's chunks are gone from the keyword and dense legs too, not only the metadata.
    assert snapshot.keyword.search(analyze(cinder), 10) == []
    assert {snapshot.chunks[row].locator.doc_id for row, _ in snapshot.dense.search(HashEmbedder().embed([note(cinder)])[0], 50)} \
        == set(snapshot.documents)
    reader = KnowledgeBase(Settings(index=tmp_path / "idx", embedding_model=HASH_MODEL), embedder=HashEmbedder())
    assert top_doc(reader, bramble) == new_bramble
    assert "version 2" in reader.search(bramble, k=1)[0].chunk.text


def test_without_sync_documents_of_deleted_files_stay(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder)
    kb, _, _ = counting_kb(tmp_path / "idx")
    kb.ingest([folder])
    gone = doc_id_for_file(paths[WORDS[0]])
    paths[WORDS[0]].unlink()
    report = kb.ingest([folder])
    assert report.removed == []
    assert gone in kb.store.load().documents


def test_sync_removes_only_documents_from_the_synced_folder(tmp_path: Path) -> None:
    synced, other = tmp_path / "synced", tmp_path / "other"
    mine = write_notes(synced, WORDS[:2])
    theirs = write_notes(other, WORDS[2:4])
    kb, _, _ = counting_kb(tmp_path / "idx")
    kb.ingest([synced, other])
    ids = {word: doc_id_for_file(path) for word, path in {**mine, **theirs}.items()}
    mine[WORDS[0]].unlink()
    theirs[WORDS[2]].unlink()

    report = kb.ingest([synced], sync=True)

    assert report.removed == [RemovedFile(str(mine[WORDS[0]].resolve()), ids[WORDS[0]])]
    assert set(kb.store.load().documents) == {ids[WORDS[1]], ids[WORDS[2]], ids[WORDS[3]]}


def test_sync_of_a_folder_whose_files_are_all_gone_empties_it(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder)
    kb, _, _ = counting_kb(tmp_path / "idx")
    kb.ingest([folder])
    expected = sorted((RemovedFile(str(path.resolve()), doc_id_for_file(path)) for path in paths.values()), key=lambda r: r.path)
    for path in paths.values():
        path.unlink()
    report = kb.ingest([folder], sync=True)
    assert report.removed == expected  # in path order
    snapshot = kb.store.load()
    assert snapshot.documents == {} and len(snapshot.chunks) == len(snapshot.dense) == len(snapshot.keyword) == 0


def test_a_moved_file_keeps_its_chunks_under_its_new_path_without_reembedding(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder)
    kb, embedder, recorder = counting_kb(tmp_path / "idx")
    kb.ingest([folder])
    word = WORDS[0]
    doc_id = doc_id_for_file(paths[word])
    moved = folder / "archive" / "renamed.md"
    moved.parent.mkdir()
    shutil.move(paths[word], moved)
    calls, extractions = embedder.calls, len(recorder.extracted())

    report = kb.ingest([folder], sync=True)

    assert (embedder.calls, len(recorder.extracted())) == (calls, extractions)
    assert report.removed == []
    entry = next(e for e in report.ingested if e.doc_id == doc_id)
    assert (entry.path, entry.source, entry.unchanged) == (str(moved.resolve()), "renamed.md", True)
    snapshot = kb.store.load()
    record = snapshot.documents[doc_id]
    assert (record.path, record.source) == (str(moved.resolve()), "renamed.md")
    assert {c.locator.source for c in snapshot.chunks if c.locator.doc_id == doc_id} == {"renamed.md"}
    hit = kb.search(word, k=1)[0]
    assert (hit.chunk.locator.doc_id, hit.chunk.locator.source) == (doc_id, "renamed.md")


def test_cli_ingest_sync_json_lists_the_removed_documents(run_cli: RunCli, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder)
    index = tmp_path / "idx"
    first = run_cli("ingest", folder, "--index", index, "--json")
    assert first.exit_code == 0, first.stderr
    assert first.json()["removed"] == []
    gone = paths[WORDS[1]]
    gone_id = doc_id_for_file(gone)
    gone.unlink()

    plain = run_cli("ingest", folder, "--index", index, "--json")
    assert plain.json()["removed"] == []  # without --sync nothing is removed

    synced = run_cli("ingest", folder, "--index", index, "--sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    report = synced.json()
    assert set(report) == {"ingested", "skipped", "failed", "removed"}
    assert report["removed"] == [{"path": str(gone.resolve()), "doc_id": gone_id}]
    assert [e["unchanged"] for e in report["ingested"]] == [True, True]
    listed = run_cli("docs", "list", "--index", index, "--json").json()["documents"]
    assert sorted(d["doc_id"] for d in listed) == sorted(doc_id_for_file(p) for p in paths.values() if p.exists())

    text = run_cli("ingest", folder, "--index", index, "--sync")
    assert text.exit_code == 0
    assert "2 ingested, 0 skipped, 0 failed, 0 removed" in text.stderr


# --------------------------------------------------------------------------- commits

class InterruptingEmbedder(HashEmbedder):
    """Raises KeyboardInterrupt (which no per-file boundary catches) on its nth embed call."""

    def __init__(self, interrupt_on: int) -> None:
        super().__init__()
        self.interrupt_on = interrupt_on

    def embed(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
        if self.calls + 1 == self.interrupt_on:
            raise KeyboardInterrupt
        return super().embed(texts, show_progress)


@pytest.mark.parametrize(("every", "published"), [(0, [3]), (1, [1, 2, 3]), (2, [2, 3])])
def test_commit_every_files_publishes_the_work_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int, published: list[int]
) -> None:
    folder = tmp_path / "docs"
    write_notes(folder)
    kb, _, _ = counting_kb(tmp_path / "idx", commit_every_files=every, commit_every_s=0)
    counts: list[int] = []
    publish = kb.store.publish

    def counting_publish(snapshot: Snapshot) -> Path:
        counts.append(len(snapshot.documents))
        return publish(snapshot)

    monkeypatch.setattr(kb.store, "publish", counting_publish)
    kb.ingest([folder])
    assert counts == published


def test_an_interrupted_ingest_keeps_its_commits_and_the_next_one_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder, WORDS)
    index = tmp_path / "idx"
    settings = Settings(index=index, embedding_model=HASH_MODEL, commit_every_files=2, commit_every_s=0)
    interrupted = KnowledgeBase(settings, embedder=InterruptingEmbedder(interrupt_on=4))
    with pytest.raises(KeyboardInterrupt):
        interrupted.ingest([folder])

    # Files 1-2 were committed; file 3 was embedded but not committed; file 4 never finished.
    ordered = [doc_id_for_file(paths[w]) for w in sorted(WORDS)]
    snapshot = IndexStore(index).load()
    assert set(snapshot.documents) == set(ordered[:2])
    assert_aligned(snapshot)

    kb, embedder, _ = counting_kb(index, commit_every_files=2, commit_every_s=0)
    report = kb.ingest([folder])
    assert [e.unchanged for e in report.ingested] == [True, True, False, False, False]
    assert embedder.calls == 3
    final = kb.store.load()
    assert set(final.documents) == set(ordered)
    assert_aligned(final)
    assert [p.name for p in (index / "snapshots").iterdir()] == [kb.store.current().name]


def test_commit_settings_refuse_negative_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="commit_every_files"):
        Settings(index=tmp_path, commit_every_files=-1)
    with pytest.raises(ValueError, match="commit_every_s"):
        Settings(index=tmp_path, commit_every_s=-5)


def test_the_keyword_scores_after_sync_equal_a_fresh_index_of_the_same_files(tmp_path: Path) -> None:
    """Removing documents leaves no trace in the BM25 statistics (idf, average length)."""
    folder = tmp_path / "docs"
    paths = write_notes(folder, WORDS)
    kb, _, _ = counting_kb(tmp_path / "idx")
    kb.ingest([folder])
    paths[WORDS[0]].unlink()
    paths[WORDS[3]].unlink()
    kb.ingest([folder], sync=True)
    fresh, _, _ = counting_kb(tmp_path / "fresh")
    fresh.ingest([folder])

    synced, rebuilt = kb.store.load(), fresh.store.load()
    assert sorted(c.chunk_id for c in synced.chunks) == sorted(c.chunk_id for c in rebuilt.chunks)
    order = [c.chunk_id for c in rebuilt.chunks]
    position = {c.chunk_id: i for i, c in enumerate(synced.chunks)}
    terms = analyze("the procedure desk " + " ".join(WORDS))
    np.testing.assert_allclose(synced.keyword.scores(terms)[[position[c] for c in order]], rebuilt.keyword.scores(terms), rtol=1e-5)
