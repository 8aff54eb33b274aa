"""Dense search in FAISS: inner product over normalised vectors (cosine), row positions as ids."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray


class FaissIndex:
    name = "dense"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: NDArray[np.float32]) -> None:
        start = len(self)
        self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.arange(start, start + len(vectors), dtype=np.int64))

    def vectors(self) -> NDArray[np.float32]:
        if not len(self):
            return np.zeros((0, self.dim), np.float32)
        # Rows are ids 0..n-1 in insertion order, so the flat storage is already row-ordered.
        return np.asarray(faiss.downcast_index(self._index.index).reconstruct_n(0, len(self)), np.float32)

    def keep(self, rows: NDArray[np.int64]) -> None:
        """Keep only these rows, renumbered 0..n-1 in this order (deleting documents)."""
        kept = self.vectors()[rows]
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.add(kept)

    def search(self, query: NDArray[np.float32], k: int, mask: NDArray[np.bool_] | None = None) -> list[tuple[int, float]]:
        """Up to k (row, cosine) pairs, best first; mask limits the rows searched inside FAISS."""
        if not len(self) or k <= 0:
            return []
        params = None
        if mask is not None:
            allowed = np.flatnonzero(mask).astype(np.int64)
            if not len(allowed):
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        k = min(k, len(self))
        scores, ids = self._index.search(query.reshape(1, -1).astype(np.float32), k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def save(self, directory: Path) -> None:
        faiss.write_index(self._index, str(directory / "dense.faiss"))

    @classmethod
    def load(cls, directory: Path) -> FaissIndex:
        raw = faiss.read_index(str(directory / "dense.faiss"))  # comes back as its concrete IndexIDMap2
        index = cls(raw.d)
        index._index = raw
        return index
