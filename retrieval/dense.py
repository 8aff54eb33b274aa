"""Dense search in FAISS: inner product over normalised vectors (cosine).

A row (chunk) may own several vectors, one per sentence: a chunk's dense score is the cosine of
its best sentence. On ../shared/data/qa this finds the right page first for 77% of English
questions where one vector per chunk does for 63%: a question usually paraphrases one sentence,
and averaging it with its neighbours (and MiniLM's 256-token cut) blurs that."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

# Vectors fetched per row asked for, before taking each row's best: rows own several vectors.
_FETCH_PER_ROW = 8


class FaissIndex:
    name = "dense"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._owners: list[NDArray[np.int64]] = []  # row of each vector, in blocks; ids are positions 0..n-1
        self._rows = 0

    def __len__(self) -> int:
        """Number of rows (chunks)."""
        return self._rows

    @property
    def _owner(self) -> NDArray[np.int64]:
        """The row of every vector, concatenated once on first use (not on every add: n^2)."""
        if len(self._owners) != 1:
            self._owners = [np.concatenate(self._owners) if self._owners else np.zeros(0, np.int64)]
        return self._owners[0]

    @property
    def vector_count(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: NDArray[np.float32], owners: NDArray[np.int64], rows: int) -> None:
        """Append rows new rows; owners[i] (0..rows-1) is the new row that vectors[i] belongs to."""
        owners = np.asarray(owners, np.int64)
        if len(vectors) != len(owners) or (len(owners) and not 0 <= owners.min() <= owners.max() < rows):
            raise ValueError("each vector needs an owner among the new rows")
        start = self.vector_count
        self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.arange(start, start + len(vectors), dtype=np.int64))
        self._owners.append(owners + self._rows)
        self._rows += rows

    def vectors(self) -> NDArray[np.float32]:
        if not self.vector_count:
            return np.zeros((0, self.dim), np.float32)
        # Ids are 0..n-1 in insertion order, so the flat storage is already id-ordered.
        return np.asarray(faiss.downcast_index(self._index.index).reconstruct_n(0, self.vector_count), np.float32)

    def keep(self, rows: NDArray[np.int64]) -> None:
        """Keep only these rows, renumbered 0..len(rows)-1 in this order (deleting documents)."""
        new_row = np.full(len(self), -1, np.int64)
        new_row[rows] = np.arange(len(rows))
        remapped = new_row[self._owner]
        kept = np.flatnonzero(remapped >= 0)
        kept = kept[np.argsort(remapped[kept], kind="stable")]
        vectors = self.vectors()[kept]
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self._owners = []
        self._rows = 0
        self.add(vectors, remapped[kept], len(rows))

    def search(self, query: NDArray[np.float32], k: int, mask: NDArray[np.bool_] | None = None) -> list[tuple[int, float]]:
        """Up to k (row, best cosine) pairs, best first; mask (per row) limits the search inside FAISS."""
        if not self.vector_count or k <= 0:
            return []
        params = None
        allowed = np.zeros(0, np.int64)
        if mask is not None:
            allowed = np.flatnonzero(mask[self._owner]).astype(np.int64)
            if not len(allowed):
                return []
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        query = query.reshape(1, -1).astype(np.float32)
        searchable = self.vector_count if mask is None else len(allowed)
        fetch = min(k * _FETCH_PER_ROW, searchable)
        while True:
            scores, ids = self._index.search(query, fetch, params=params)
            best: dict[int, float] = {}
            for i, s in zip(ids[0], scores[0]):
                if i >= 0:
                    row = int(self._owner[i])
                    if row not in best:  # results come best first, so the first seen is the row's best
                        best[row] = float(s)
            # A few long chunks can fill the fetched vectors; fetch more until k rows or all.
            if len(best) >= k or fetch >= searchable:
                return sorted(best.items(), key=lambda pair: -pair[1])[:k]
            fetch = min(fetch * 4, searchable)

    def save(self, directory: Path) -> None:
        faiss.write_index(self._index, str(directory / "dense.faiss"))
        np.savez(directory / "dense_rows.npz", owner=self._owner, rows=self._rows)

    @classmethod
    def load(cls, directory: Path) -> FaissIndex:
        raw = faiss.read_index(str(directory / "dense.faiss"))  # comes back as its concrete IndexIDMap2
        index = cls(raw.d)
        index._index = raw
        with np.load(directory / "dense_rows.npz") as rows:
            index._owners, index._rows = [rows["owner"]], int(rows["rows"])
        return index
