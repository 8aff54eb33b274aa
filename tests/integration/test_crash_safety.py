"""A real `citekb ingest` process killed with SIGKILL at several points leaves the last committed
index whole: it loads, its three stores and its manifest agree chunk for chunk, every document
it lists has all its chunks, search finds each one, and the next ingest picks up from there.

The kill points come from watching the index directory (the write lock taken, a snapshot being
staged, CURRENT flipping) plus a small random delay from a seeded generator, never from a hook
in production code. Where exactly each kill lands varies from run to run; what is asserted
holds wherever it lands."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings
from citekb.ingest.ids import doc_id_for_file
from citekb.retrieval.analyze import analyze
from citekb.retrieval.store import IndexStore, read_manifest

from fakes import HashEmbedder

LAUNCHER = Path(__file__).resolve().with_name("hash_cli.py")
HASH_MODEL = "test/hash-embedder"
NOTES = 40
WAIT_S = 120  # bounds each wait for the process; a hung test fails instead of hanging the suite
FILLER = ("Records are kept in the central archive for seven years. Each change is reviewed by a "
          "second person before it is approved. Questions go to the operations team by email. ")


def word(i: int) -> str:
    """A made-up word per note, built from letters the English stemmer never strips."""
    letters = "bcdfgkmnprtvz"
    return "quor" + letters[i // len(letters) % len(letters)] + letters[i % len(letters)] + "ix"


def write_note(folder: Path, i: int) -> Path:
    path = folder / f"note-{i:03d}.md"
    paragraphs = [f"# Note {word(i)}", f"The {word(i)} procedure covers storage and retention."]
    paragraphs += [FILLER * 3 + f"See also section {n} of the {word(i)} guide." for n in range(6)]
    path.write_text("\n\n".join(paragraphs) + "\n", "utf-8")
    return path


def start_ingest(folder: Path, index: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEKB_")}
    env.update(HF_HUB_OFFLINE="1", CITEKB_EMBEDDING_MODEL=HASH_MODEL, CITEKB_COMMIT_EVERY_FILES="1")
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, str(LAUNCHER), "ingest", str(folder), "--index", str(index), "--json"],
                                stdout=out, stderr=out, env=env)


def staged(index: Path) -> set[str]:
    """The names of the snapshots being written (or left half-written by a killed writer)."""
    try:
        return {name for name in os.listdir(index / "snapshots") if name.startswith(".tmp-")}
    except FileNotFoundError:
        return set()


def current_name(index: Path) -> str | None:
    try:
        return (index / "CURRENT").read_text("utf-8")
    except FileNotFoundError:
        return None


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], delay_s: float) -> bool:
    """SIGKILL proc delay_s after ready() first holds (polled). False if it exited first."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError("the ingest made no visible progress")
        time.sleep(0.001)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)  # a no-op if it has just exited
    returncode = proc.wait(timeout=WAIT_S)
    assert returncode in (0, -signal.SIGKILL), f"the ingest exited with {returncode}"
    return returncode == -signal.SIGKILL


def assert_committed_index_is_whole(index: Path, words: dict[str, str]) -> set[str]:
    """The checks a reader relies on; returns the committed doc_ids."""
    store = IndexStore(index)
    snapshot = store.load(expect_model_id=HASH_MODEL)  # raises if its stores' row counts differ
    manifest = read_manifest(store.current())
    assert len(snapshot.chunks) == len(snapshot.dense) == len(snapshot.keyword) == manifest["counts"]["chunks"]
    assert len(snapshot.documents) == manifest["counts"]["documents"]
    assert set(snapshot.documents) <= set(words)
    assert {c.locator.doc_id for c in snapshot.chunks} == set(snapshot.documents)
    for doc_id, record in snapshot.documents.items():
        assert [c.chunk_id for c in snapshot.chunks if c.locator.doc_id == doc_id] == [f"{doc_id}:{i}" for i in range(record.chunks)]
    kb = KnowledgeBase(Settings(index=index, embedding_model=HASH_MODEL), embedder=HashEmbedder())
    for doc_id in snapshot.documents:
        assert kb.search(words[doc_id], k=1)[0].chunk.locator.doc_id == doc_id
    report = kb.check()
    assert report.problems == []
    return set(snapshot.documents)


def test_an_ingest_killed_at_any_point_leaves_the_last_commit_whole_and_resumable(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    paths = [write_note(folder, i) for i in range(NOTES)]
    words = {doc_id_for_file(p): word(i) for i, p in enumerate(paths)}
    assert len({tuple(analyze(w)) for w in words.values()}) == NOTES  # one distinct term per note
    index = tmp_path / "idx"
    log = tmp_path / "ingest.log"
    rng = random.Random(20240611)

    def locked() -> Callable[[], bool]:
        return lambda: (index / ".lock").exists()

    def staging() -> Callable[[], bool]:
        left_over = staged(index)  # a killed writer's staging folder stays until the next publish
        return lambda: bool(staged(index) - left_over)

    def flipped(times: int) -> Callable[[], bool]:
        names = {current_name(index)}

        def ready() -> bool:
            names.add(current_name(index))
            return len(names) > times

        return ready

    kill_points: list[Callable[[], Callable[[], bool]]] = [
        locked,  # the writer has started: nothing committed yet, or a first commit under way
        staging,  # a snapshot being written
        lambda: flipped(1),  # just after a commit: collecting the old snapshot, or on to the next file
        staging,
        lambda: flipped(2),
    ]
    committed: set[str] = set()
    kills = 0
    for kill_point in kill_points:
        ready = kill_point()
        proc = start_ingest(folder, index, log)
        killed = kill_when(proc, ready, delay_s=rng.uniform(0, 0.05))
        kills += killed
        if not killed:  # it finished first: nothing left to interrupt
            assert proc.returncode == 0, log.read_text("utf-8")
            break
        if IndexStore(index).exists:
            now = assert_committed_index_is_whole(index, words)
            assert committed <= now  # a commit is never undone
            committed = now
        else:
            assert committed == set()
    assert kills >= 3, log.read_text("utf-8")  # the corpus is large enough to be interrupted

    extra = write_note(folder, NOTES)  # so the last run has something to commit
    words[doc_id_for_file(extra)] = word(NOTES)
    final = start_ingest(folder, index, log)
    try:
        assert final.wait(timeout=WAIT_S) == 0, log.read_text("utf-8")
    finally:
        final.kill()  # only if it hung; a no-op once it has exited
    assert assert_committed_index_is_whole(index, words) == set(words)
    # Whatever the kills left behind (staging folders, unpublished snapshots, CURRENT.tmp) is gone.
    assert os.listdir(index / "snapshots") == [IndexStore(index).current().name]
    assert not (index / "CURRENT.tmp").exists()

