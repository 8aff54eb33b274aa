"""A corpus of tiny Markdown notes, each built around one made-up word so that a search for the
word can only land on its note; checks that an index holds them whole; and an extractor that
records which files it read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from citekb.api.kb import KnowledgeBase
from citekb.ingest.document import Document
from citekb.ingest.extract.base import Extractor
from citekb.retrieval.store import Snapshot

WORDS = ("alderwick", "brambleton", "cindervale", "dunmorrow", "elmsworth")


def note(word: str, version: int = 1) -> str:
    return (f"# The {word} note\n\nThe {word} procedure covers storage and retention, version {version}.\n\n"
            f"Ask the {word} desk before changing anything.\n")


def write_notes(folder: Path, words: tuple[str, ...] = WORDS[:3]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for word in words:
        paths[word] = folder / f"{word}.md"
        paths[word].write_text(note(word), "utf-8")
    return paths


def assert_aligned(snapshot: Snapshot) -> None:
    """Every store holds the same chunks, and each document exactly its own, numbered 0..n-1."""
    assert len(snapshot.chunks) == len(snapshot.dense) == len(snapshot.keyword)
    assert {c.locator.doc_id for c in snapshot.chunks} == set(snapshot.documents)
    for doc_id, record in snapshot.documents.items():
        assert [c.chunk_id for c in snapshot.chunks if c.locator.doc_id == doc_id] == [f"{doc_id}:{i}" for i in range(record.chunks)]


def top_doc(kb: KnowledgeBase, word: str) -> str:
    return kb.search(word, k=1)[0].chunk.locator.doc_id


class RecordingExtractor:
    """Wraps a real extractor and appends the name of each file it extracts to a log file. A
    file, not a list: extraction may run in a child process (ingest/worker.py), which gets a
    pickled copy of this object, so it is a plain module-level class."""

    def __init__(self, inner: Extractor, log: Path) -> None:
        self.inner = inner
        self.suffixes = inner.suffixes
        self.log = log

    def extract(self, path: Path, doc_id: str, **options: Any) -> Document:
        with self.log.open("a", encoding="utf-8") as f:
            f.write(path.name + "\n")
        return self.inner.extract(path, doc_id, **options)

    def extracted(self) -> list[str]:
        """The names of the files extracted so far, by any copy of this extractor, sorted."""
        return sorted(self.log.read_text("utf-8").split()) if self.log.exists() else []
