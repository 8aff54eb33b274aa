"""Okapi BM25, scored exactly as rank-bm25's BM25Okapi, served from sparse matrices.

rank-bm25 loops over every document per query in Python (over 100 ms at 100k chunks). Here
the per-term BM25 weights of all documents sit in a CSC matrix, so a query is a sum of a few
sparse columns. bm25s does the same, but its "robertson" idf clamps negative idf to zero where
rank-bm25 floors it at epsilon times the mean idf, which changes rankings for common terms.

At a million rows a query's columns hold about two million postings, so search prunes
(MaxScore, as Lucene does) and never sorts all rows; its answer stays that of scoring them all."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from citekb.ingest.errors import IndexMismatchError

try:  # scipy's own kernel for sparse matrix times vector, called on each column where it lies
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec
except ImportError:  # pragma: no cover - a scipy that moved it
    _csc_matvec = None

_BUILD_NONZEROS = 1 << 22  # weights computed at a time while building
_SEED_ROWS = 128  # per term: the rows of its largest weights, which seed the pruning threshold
_PRUNE_MIN_POSTINGS = 200_000  # fewer postings: scoring every row is as fast (measured at 100k rows)
_SEARCH_COST = 30  # scoring one row for one term by binary search costs about 30 postings summed


def _sorted_unique(values: NDArray[np.integer]) -> NDArray[np.integer]:
    """np.unique by sorting: several times faster than its hash table on a few thousand ints."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def _kth_largest(values: NDArray[np.float32], k: int) -> float:
    return float(np.partition(values, len(values) - k)[len(values) - k])


def _best(rows: NDArray[np.integer], scores: NDArray[np.float32], k: int) -> list[tuple[int, float]]:
    """The k best (row, score) pairs of these (rows ascending): score descending, then row
    ascending, also where rows tie at the k-th score."""
    if len(rows) > k:
        kth = _kth_largest(scores, k)
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)[: k - len(above)]
        keep = np.concatenate([above, tied])
        rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))
    return [(int(r), float(s)) for r, s in zip(rows[order], scores[order])]


def _idf(n_docs: int, df: NDArray[np.float64]) -> NDArray[np.float64]:
    """Okapi idf as rank-bm25 computes it, before negative values are floored."""
    return np.log(n_docs - df + 0.5) - np.log(df + 0.5)


def _length_norm(doc_len: NDArray[np.float32], k1: float, b: float) -> NDArray[np.floating]:
    """k1 * (1 - b + b * length / mean length), for every document."""
    avgdl = doc_len.mean() if len(doc_len) else 0.0
    return k1 * (1 - b + b * doc_len / avgdl) if avgdl > 0 else np.full(len(doc_len), k1)


def _weight(idf: NDArray[np.float64], tf: NDArray[np.float32], norm: NDArray[np.floating], k1: float) -> NDArray[np.float64]:
    """A term's BM25 weight in a document: its idf, saturated by the term frequency."""
    return idf * tf * (k1 + 1) / (tf + norm)


def unit_scores(ids: NDArray[np.integer], lengths: NDArray[np.integer], query: Sequence[int],
                k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> NDArray[np.float32]:
    """The scores Bm25Index(k1, b, epsilon) would give a small collection for one query, to the
    bit, without building it: only the query's terms are weighed. The collection's units (rows)
    are given as term ids, concatenated in order (ids), with each unit's term count (lengths);
    query is term ids, repeats counting. Mean idf, which floors negative idf, is only worked
    out when a query term needs it (that alone needs every term's document frequency)."""
    n_units = len(lengths)
    scores = np.zeros(n_units, np.float32)
    counts: dict[int, int] = {}
    for term in query:
        counts[term] = counts.get(term, 0) + 1
    if not n_units or not counts:
        return scores
    unit_of = np.repeat(np.arange(n_units), lengths)
    tfs: list[NDArray[np.intp]] = []
    present: list[int] = []
    for term in counts:
        tf = np.bincount(unit_of[ids == term], minlength=n_units)
        if tf.any():
            tfs.append(tf)
            present.append(term)
    if not present:
        return scores
    tf_matrix = np.stack(tfs).astype(np.float32)  # one row per present query term
    df = np.count_nonzero(tf_matrix, axis=1).astype(np.float64)
    idf = _idf(n_units, df)
    if (idf < 0).any():
        # Bm25Index's vocabulary is in order of first occurrence, and the mean's rounding
        # depends on that order.
        width = int(ids.max()) + 1
        in_units = _sorted_unique(unit_of * width + ids) % width  # each term once per unit
        vocab = np.fromiter(dict.fromkeys(ids.tolist()), np.int64)
        all_df = np.bincount(in_units, minlength=width)[vocab].astype(np.float64)
        mean_idf = _idf(n_units, all_df).mean()
        idf = np.where(idf < 0, epsilon * mean_idf, idf)
    norm = _length_norm(lengths.astype(np.float32), k1, b)
    for i, term in enumerate(present):
        units = np.flatnonzero(tf_matrix[i])
        weight = _weight(idf[i], tf_matrix[i, units], norm[units], k1).astype(np.float32)
        scores[units] += weight * np.float32(counts[term])
    return scores


class _Weights:
    """The BM25 weight of every (row, term) as a CSC matrix (row indices sorted within each
    column), with what pruning needs: each term's largest weight, and the rows holding its
    _SEED_ROWS largest weights."""

    def __init__(self, matrix: sp.csc_matrix, bound: NDArray[np.float32], top_ptr: NDArray[np.int64],
                 top_rows: NDArray[np.int32]) -> None:
        self.matrix, self.bound, self._top_ptr, self._top_rows = matrix, bound, top_ptr, top_rows
        self.lengths = np.diff(matrix.indptr)
        self.nonnegative = bool(matrix.nnz == 0 or matrix.data.min() >= 0)

    @classmethod
    def of(cls, matrix: sp.csc_matrix, seed_rows: int = _SEED_ROWS) -> _Weights:
        indptr, data = matrix.indptr, matrix.data
        lengths = np.diff(indptr)
        bound = np.zeros(matrix.shape[1], np.float32)
        filled = np.flatnonzero(lengths)
        if len(filled):
            bound[filled] = np.maximum.reduceat(data, indptr[filled])
        long_cols = np.flatnonzero(lengths > seed_rows)
        top_ptr = np.zeros(matrix.shape[1] + 1, np.int64)
        top_ptr[long_cols + 1] = seed_rows
        np.cumsum(top_ptr, out=top_ptr)
        top_rows = np.empty(len(long_cols) * seed_rows, matrix.indices.dtype)
        for i, col in enumerate(long_cols.tolist()):
            lo, hi = indptr[col], indptr[col + 1]
            best = np.argpartition(data[lo:hi], hi - lo - seed_rows)[hi - lo - seed_rows:]
            top_rows[i * seed_rows:(i + 1) * seed_rows] = np.sort(matrix.indices[lo:hi][best])
        return cls(matrix, bound, top_ptr, top_rows)

    def top(self, col: int) -> NDArray[np.integer]:
        """Rows holding this term's largest weights (all its rows when it has few)."""
        lo, hi = self._top_ptr[col], self._top_ptr[col + 1]
        rows: NDArray[np.integer] = self._top_rows[lo:hi] if hi > lo else self.matrix.indices[
            self.matrix.indptr[col]:self.matrix.indptr[col + 1]]
        return rows

    def column_sums(self, cols: NDArray[np.int64], mult: NDArray[np.float32],
                    out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        """Every row's sum of these columns' weights times mult, added to out (a new dense
        float32 vector by default) one column after another, in the order and precision of
        the sparse matrix-vector product Bm25Index.scores has always used."""
        n_rows = self.matrix.shape[0]
        if out is None:
            out = np.zeros(n_rows, np.float32)
        if _csc_matvec is None:  # scipy moved its kernel: slice the columns (a copy) instead
            if len(cols):
                out += np.asarray(self.matrix[:, cols] @ mult, dtype=np.float32).ravel()
            return out
        indptr, indices, data = self.matrix.indptr, self.matrix.indices, self.matrix.data
        for col, m in zip(cols.tolist(), mult):
            lo, hi = indptr[col], indptr[col + 1]
            if hi > lo:
                span = np.array([0, hi - lo], indices.dtype)
                _csc_matvec(n_rows, 1, span, indices[lo:hi], data[lo:hi], np.array([m], np.float32), out)
        return out

    def score_rows(self, rows: NDArray[np.integer], cols: NDArray[np.int64], mult: NDArray[np.float32]) -> NDArray[np.float32]:
        """Exact scores of these rows (sorted, unique), summed in the same order and precision
        as the sparse matrix-vector product of Bm25Index.scores, so the two agree to the bit."""
        indptr, indices, data = self.matrix.indptr, self.matrix.indices, self.matrix.data
        scores = np.zeros(len(rows), np.float32)
        for col, m in zip(cols.tolist(), mult):
            lo, hi = indptr[col], indptr[col + 1]
            if hi == lo or not len(rows):
                continue
            col_rows = indices[lo:hi]
            if len(rows) <= hi - lo:
                at = np.minimum(np.searchsorted(col_rows, rows), hi - lo - 1)
                found = col_rows[at] == rows
                scores[found] += data[lo:hi][at[found]] * m
            else:
                at = np.minimum(np.searchsorted(rows, col_rows), len(rows) - 1)
                found = rows[at] == col_rows
                scores[at[found]] += data[lo:hi][found] * m
        return scores


class Bm25Index:
    """Term frequencies of every row (chunk) and the BM25 weights derived from them."""

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> None:
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self._vocab: dict[str, int] = {}
        self._blocks: list[sp.csr_matrix] = []  # row blocks added since the matrix was last stacked
        self._rows = 0
        self._weights: _Weights | None = None  # derived from the tf matrix on first search

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

    def _build(self) -> _Weights:
        tf = self._tf
        n_docs, width = tf.shape
        df = np.bincount(tf.indices, minlength=width).astype(np.float64)
        present = df > 0  # terms of deleted rows linger in the vocabulary; rank-bm25 never saw them
        idf = _idf(n_docs, df)
        mean_idf = idf[present].mean() if present.any() else 0.0
        idf = np.where(idf < 0, self.epsilon * mean_idf, idf)
        norm = _length_norm(np.asarray(tf.sum(axis=1)).ravel(), self.k1, self.b)
        # The tf matrix's counts, turned into weights in place, a block of columns at a time, so
        # that the float64 temporaries stay small: whole-matrix temporaries made most of the
        # build's peak memory.
        matrix = tf.tocsc()
        matrix.sort_indices()
        lengths = np.diff(matrix.indptr)
        edges = np.searchsorted(matrix.indptr, np.arange(0, matrix.nnz, _BUILD_NONZEROS), side="right") - 1
        edges = np.unique(np.concatenate([edges, [width]]))
        for c0, c1 in zip(edges[:-1].tolist(), edges[1:].tolist()):
            lo, hi = matrix.indptr[c0], matrix.indptr[c1]
            cols = np.repeat(np.arange(c0, c1), lengths[c0:c1])
            counts = matrix.data[lo:hi]
            matrix.data[lo:hi] = _weight(idf[cols], counts, norm[matrix.indices[lo:hi]], self.k1)
        return _Weights.of(matrix)

    def _weight_matrix(self) -> _Weights:
        weights = self._weights
        if weights is None:
            weights = self._weights = self._build()
        return weights

    def _query(self, terms: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The query's columns in order of first occurrence, and how often each occurs."""
        counts: dict[int, int] = {}
        for term in terms:
            col = self._vocab.get(term)
            if col is not None:
                counts[col] = counts.get(col, 0) + 1
        return np.fromiter(counts, np.int64, len(counts)), np.fromiter(counts.values(), np.float32, len(counts))

    def scores(self, terms: Sequence[str]) -> NDArray[np.float32]:
        """The BM25 score of every row for these query terms (repeats count, as in rank-bm25)."""
        weights = self._weight_matrix()
        cols, mult = self._query(terms)
        if not len(cols) or not len(self):
            return np.zeros(len(self), np.float32)
        return weights.column_sums(cols, mult)

    def search(self, terms: Sequence[str], k: int, mask: NDArray[np.bool_] | None = None) -> list[tuple[int, float]]:
        """Up to k (row, score) pairs with a positive score, best first (ties: lower row first);
        mask limits the rows searched. Long posting lists are pruned (MaxScore) when that is
        safe; the result is always that of scoring every row."""
        weights = self._weight_matrix()
        cols, mult = self._query(terms)
        if k < 1 or not len(cols) or not len(self):
            return []
        if mask is not None:
            mask = np.asarray(mask, np.bool_)  # rows are picked by it, not indexed
        postings = int(np.sum(weights.lengths[cols]))
        if postings >= _PRUNE_MIN_POSTINGS:
            hits = self._search_pruned(weights, cols, mult, k, mask)
            if hits is not None:
                return hits
        return self._search_exhaustive(weights, cols, mult, k, mask)

    def _search_exhaustive(self, weights: _Weights, cols: NDArray[np.int64], mult: NDArray[np.float32], k: int,
                           mask: NDArray[np.bool_] | None) -> list[tuple[int, float]]:
        """Score every row, then take the best k."""
        scores = weights.column_sums(cols, mult)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        return _best(candidates, scores[candidates], k)

    def _search_pruned(self, weights: _Weights, cols: NDArray[np.int64], mult: NDArray[np.float32], k: int,
                       mask: NDArray[np.bool_] | None, search_cost: float = _SEARCH_COST) -> list[tuple[int, float]] | None:
        """The exhaustive result, found by scoring far fewer rows exactly (MaxScore: Turtle & Flood 1995).

        1. theta, a score at most the k-th best: the exact k-th best score of the rows that
           hold some query term's largest weights.
        2. The terms whose upper bounds (largest weights) add up, smallest first, to less than
           theta are non-essential: a row with none of the other, essential terms scores below
           theta. The essential columns are summed into a dense accumulator; a row is a
           candidate if its sum plus the non-essential bounds reaches theta.
        3. Few candidates: each is scored exactly (binary search in each column). Many (the
           bounds were loose; common with BM25's k1 = 1.5, where a term's largest weight is up
           to 2.5 times its usual one): the non-essential columns are summed in too, and only
           rows whose sum reaches theta, and the k-th best sum, are scored exactly.
        No full sort or partition of all rows happens. None when it cannot prune: some weight
        is negative (the bounds assume none is), or no theta is found (the mask leaves fewer
        than k seed rows)."""
        if not weights.nonnegative:
            return None
        seed = _sorted_unique(np.concatenate([weights.top(col) for col in cols]))
        if mask is not None:
            seed = seed[mask[seed]]
        if len(seed) < k:
            return None
        theta = _kth_largest(weights.score_rows(seed, cols, mult), k)
        if theta <= 0:
            return None
        bounds = weights.bound[cols].astype(np.float64) * mult
        # Bounds the difference of any float32 sum of these terms' products, in any order, from
        # the exact sum (products are rounded alike everywhere; each addition is off by 2**-24).
        slack = (len(cols) + 1) * 2.0**-22 * (float(bounds.sum()) + theta)
        order = np.argsort(bounds, kind="stable")
        rest = np.cumsum(bounds[order])
        n_rest = int(np.searchsorted(rest + 2 * slack, theta, side="left"))  # bounds well below theta
        rest_bound = float(rest[n_rest - 1]) if n_rest else 0.0
        essential, inessential = np.sort(order[n_rest:]), np.sort(order[:n_rest])
        total = weights.column_sums(cols[essential], mult[essential])
        reach = None
        cut = theta - rest_bound - 2 * slack  # positive: rows without an essential term fall below
        # Candidates are looked up in the other columns one by one; where that costs more than
        # summing those columns in, they are summed in (every 16th row tells cheaply if it will).
        rest_postings = int(weights.lengths[cols[inessential]].sum())
        lookup_cost = len(cols) * search_cost  # per candidate, in postings summed
        if n_rest and np.count_nonzero(self._masked_sample(total, cut, mask)) * 16 * lookup_cost <= 2 * rest_postings:
            reach = total >= cut
            if mask is not None:
                reach &= mask
            if np.count_nonzero(reach) * lookup_cost > rest_postings:
                reach = None
        if reach is not None:
            candidates = np.flatnonzero(reach)
        else:
            weights.column_sums(cols[inessential], mult[inessential], out=total)
            candidates = self._masked(np.flatnonzero(total >= theta - 2 * slack), mask)
            if len(candidates) > k:
                # The sums are the scores up to rounding: k rows score at least the k-th best sum.
                candidates = candidates[total[candidates] >= _kth_largest(total[candidates], k) - 4 * slack]
        candidates = candidates.astype(weights.matrix.indices.dtype)
        scores = weights.score_rows(candidates, cols, mult)
        positive = scores > 0
        return _best(candidates[positive], scores[positive], k)

    @staticmethod
    def _masked_sample(total: NDArray[np.float32], cut: float, mask: NDArray[np.bool_] | None) -> NDArray[np.bool_]:
        sample = total[::16] >= cut
        return sample if mask is None else sample & mask[::16]

    @staticmethod
    def _masked(rows: NDArray[np.int64], mask: NDArray[np.bool_] | None) -> NDArray[np.int64]:
        return rows if mask is None else rows[mask[rows]]

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
