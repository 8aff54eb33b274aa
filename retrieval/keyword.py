"""Okapi BM25, scored exactly as rank-bm25's BM25Okapi, served from sparse matrices.

rank-bm25 loops over every document per query in Python (over 100 ms at 100k chunks). Here
the per-term BM25 weights of all documents sit in a CSC matrix, so a query is a sum of a few
sparse columns. bm25s does the same, but its "robertson" idf clamps negative idf to zero where
rank-bm25 floors it at epsilon times the mean idf, which changes rankings for common terms."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from citekb.ingest.errors import IndexMismatchError


class Bm25Index:
    """Term frequencies of every row (chunk) and the BM25 weights derived from them."""

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> None:
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self._vocab: dict[str, int] = {}
        self._blocks: list[sp.csr_matrix] = []  # row blocks added since the matrix was last stacked
        self._rows = 0
        self._weights: sp.csc_matrix | None = None

    def __len__(self) -> int:
        return self._rows

    @property
    def _tf(self) -> sp.csr_matrix:
        """Term frequencies, one row per document. Adds are stacked here once, on first use:
        stacking on every add made indexing n files cost n^2."""
        if len(self._blocks) != 1 or self._blocks[0].shape[1] != len(self._vocab):
            width = len(self._vocab)
            blocks = [sp.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], width)) for b in self._blocks]
            self._blocks = [sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, width), dtype=np.float32)]
        return self._blocks[0]

    @_tf.setter
    def _tf(self, matrix: sp.csr_matrix) -> None:
        self._blocks = [matrix.tocsr()]
        self._rows = int(matrix.shape[0])

    def add(self, docs: Sequence[Sequence[str]]) -> None:
        """Append one row per document (its terms, repeats counted)."""
        rows, cols, vals = [], [], []
        for i, terms in enumerate(docs):
            counts: dict[int, int] = {}
            for term in terms:
                col = self._vocab.setdefault(term, len(self._vocab))
                counts[col] = counts.get(col, 0) + 1
            rows.extend([i] * len(counts))
            cols.extend(counts)
            vals.extend(counts.values())
        self._blocks.append(sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(len(docs), len(self._vocab))))
        self._rows += len(docs)
        self._weights = None

    def keep(self, rows: NDArray[np.int64]) -> None:
        """Keep only these rows, in this order (deleting documents)."""
        self._tf = self._tf[rows]
        self._weights = None

    def _build(self) -> sp.csc_matrix:
        tf = self._tf
        n_docs = tf.shape[0]
        doc_len = np.asarray(tf.sum(axis=1)).ravel()
        avgdl = doc_len.mean() if n_docs else 0.0
        df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float64)
        present = df > 0  # terms of deleted rows linger in the vocabulary; rank-bm25 never saw them
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        mean_idf = idf[present].mean() if present.any() else 0.0
        idf = np.where(idf < 0, self.epsilon * mean_idf, idf)
        norm = self.k1 * (1 - self.b + self.b * doc_len / avgdl) if avgdl > 0 else np.full(n_docs, self.k1)
        coo = tf.tocoo()
        data = idf[coo.col] * coo.data * (self.k1 + 1) / (coo.data + norm[coo.row])
        return sp.csc_matrix((data.astype(np.float32), (coo.row, coo.col)), shape=tf.shape)

    def scores(self, terms: Sequence[str]) -> NDArray[np.float32]:
        """The BM25 score of every row for these query terms (repeats count, as in rank-bm25)."""
        if self._weights is None:
            self._weights = self._build()
        counts: dict[int, int] = {}
        for term in terms:
            col = self._vocab.get(term)
            if col is not None:
                counts[col] = counts.get(col, 0) + 1
        if not counts or not len(self):
            return np.zeros(len(self), np.float32)
        cols = np.fromiter(counts, np.int64)
        mult = np.fromiter(counts.values(), np.float32)
        return np.asarray(self._weights[:, cols] @ mult, dtype=np.float32).ravel()

    def search(self, terms: Sequence[str], k: int, mask: NDArray[np.bool_] | None = None) -> list[tuple[int, float]]:
        """Up to k (row, score) pairs with a positive score, best first; mask limits the rows searched."""
        scores = self.scores(terms)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.lexsort((candidates, -scores[candidates]))]
        return [(int(i), float(scores[i])) for i in order]

    def save(self, directory: Path) -> None:
        sp.save_npz(directory / "bm25_tf.npz", self._tf)
        params = {"k1": self.k1, "b": self.b, "epsilon": self.epsilon, "vocab": list(self._vocab)}
        (directory / "bm25.json").write_text(json.dumps(params, ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, directory: Path) -> Bm25Index:
        params = json.loads((directory / "bm25.json").read_text("utf-8"))
        index = cls(k1=params["k1"], b=params["b"], epsilon=params["epsilon"])
        index._vocab = {term: i for i, term in enumerate(params["vocab"])}
        index._tf = sp.load_npz(directory / "bm25_tf.npz").tocsr()
        if index._tf.shape[1] != len(index._vocab):
            raise IndexMismatchError(f"keyword index in {directory} is damaged: vocabulary and matrix disagree")
        return index
