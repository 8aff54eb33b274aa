"""Test-only doubles, named for what they are. Production code never falls back to these."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from citekb.ingest.document import Document
from citekb.ingest.extract.base import report_progress
from citekb.ingest.extract.markdown import MarkdownExtractor
from citekb.retrieval.analyze import analyze
from citekb.retrieval.hit import Hit


def _seeded_unit(key: str, dim: int) -> NDArray[np.float32]:
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


class HashEmbedder:
    """A deterministic bag-of-terms embedder: each analyzed term adds a fixed random unit vector
    seeded from sha256(term), and the sum is L2-normalised, so texts sharing words are similar.
    A text with no terms gets one fixed vector."""

    def __init__(
        self,
        model_id: str = "test/hash-embedder",
        dim: int = 64,
        languages: tuple[str, ...] = ("en", "zh"),
    ) -> None:
        self.model_id = model_id
        self.dim = dim
        self.languages = languages
        self.calls = 0  # how many times embed() ran, for tests that check caching

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> NDArray[np.float32]:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            terms = analyze(text)
            if not terms:
                out[row] = _seeded_unit("\x00empty", self.dim)
                continue
            total = np.zeros(self.dim, np.float32)
            for term in terms:
                total += _seeded_unit(term, self.dim)
            norm = float(np.linalg.norm(total))
            out[row] = total / norm if norm > 0 else _seeded_unit("\x00empty", self.dim)
        return out


class ReversingReranker:
    """Scores hits in reverse of the order it gets them, and records what it was given."""

    name = "reversing"

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        self.seen.append([h.chunk.chunk_id for h in hits])
        rescored = [replace(h, score=float(i), scores={**h.scores, "rerank": float(i)}) for i, h in enumerate(hits)]
        return sorted(rescored, key=lambda h: -h.score)[:k]


# --------------------------------------------------------------------------- misbehaving extractors
# For the extraction worker's tests. They run in the worker's child process, which imports this
# module by name when it unpickles them, so they are plain module-level classes.


class HangingExtractor:
    """Never returns: blocks on an event nobody sets, as a parser stuck in a loop would."""

    suffixes = (".hang",)

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        threading.Event().wait()
        raise AssertionError("unreachable")


class MemoryHungryExtractor:
    """Asks for 1 GiB at once: fine on the test machine, over any max_memory_mb a test sets."""

    suffixes = (".hungry",)

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        blob = bytearray(2**30)
        raise AssertionError(f"allocated {len(blob)} bytes under the memory limit")


class CrashingExtractor:
    """Ends its process at once, with no Python cleanup, as a crash in a C library would."""

    suffixes = (".crash",)

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        os._exit(70)


class LoggingExtractor:
    """Logs a warning naming the file, then reads it as Markdown."""

    suffixes = (".logged",)

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        logging.getLogger("citekb.tests.logging_extractor").warning("odd file path=%s", path.name)
        return MarkdownExtractor().extract(path, doc_id, max_chars)


class SlowPagesExtractor:
    """Reads the file's lines after the first as pages, one every (first line) seconds,
    reporting each as the PDF extractor does; a page that says "hang" never ends. Then reads the
    file as Markdown."""

    suffixes = (".pages",)

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        first, *pages = path.read_text("utf-8").splitlines()
        for number, page in enumerate(pages, 1):
            if page == "hang":
                threading.Event().wait()
            time.sleep(float(first))
            report_progress(f"page {number}")
        return replace(MarkdownExtractor().extract(path, doc_id, max_chars), pages=len(pages))

