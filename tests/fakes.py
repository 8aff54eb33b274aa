"""Test-only doubles, named for what they are. Production code never falls back to these."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

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
