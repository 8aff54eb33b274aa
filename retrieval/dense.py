"""Dense search in FAISS: inner product over normalised vectors (cosine).

A row (chunk) may own several vectors, one per sentence: a chunk's dense score is the cosine of
its best sentence. On ../shared/data/qa this finds the right page first for 77% of English
questions where one vector per chunk does for 63%: a question usually paraphrases one sentence,
and averaging it with its neighbours (and MiniLM's 256-token cut) blurs that.

Below DenseIndexConfig.ann_min_vectors vectors (200k: about 33k chunks) every search is
exhaustive and exact (IndexIDMap2 over IndexFlatIP). From there on an exhaustive search costs
too much (601k vectors at 100k chunks: 150-200 ms on a busy core), so the index becomes an IVF
one: about 4*sqrt(n) lists trained by spherical k-means on the vectors it holds at that moment,
each query searching the nprobe lists nearest to it. Vectors are kept as float16 (half the
memory; a cosine moves by about 1e-4, and vectors() gives them back to that precision). In
both kinds a vector's id is its position 0..n-1, so _owner maps ids to rows the same way."""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from .config import DenseIndexConfig

# Vectors fetched per row asked for, before taking each row's best: rows own several vectors.
_FETCH_PER_ROW = 8
# k-means trains on at most this many vectors per list (FAISS samples them): 64 is plenty for
# centroids and keeps training at 601k vectors to about a minute on a busy core.
_TRAIN_PER_LIST = 64
# FAISS's k-means wants at least 39 training vectors per list.
_MIN_PER_LIST = 39


def nlist_for(vectors: int) -> int:
    """IVF lists for this many vectors: about 4*sqrt(n), with enough vectors to train each."""
    return max(1, min(round(4 * math.sqrt(vectors)), vectors // _MIN_PER_LIST))


def default_nprobe(nlist: int) -> int:
    """Lists searched per query when DenseIndexConfig.nprobe is unset: 12% of them. On the
    100k-chunk synthetic index (612k vectors, 3,129 lists) 376 lists found 0.975 of the exact
    top 10 rows and 0.978 of the top 100, 251 lists 0.959 and 0.964, 128 lists 0.94 and 0.93
    (docs/benchmarks.md, "Approximate dense index"); a search scans about 12% of the vectors."""
    return min(nlist, max(8, math.ceil(nlist * 0.12)))


def _flat(dim: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _ivf(dim: int, nlist: int) -> faiss.IndexIVFScalarQuantizer:
    """An empty, untrained IVF index of float16 vectors (no residuals: codes are the vectors)."""
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT, False)
    quantizer.this.disown()  # the index frees its quantizer, as one read by read_index does
    ivf.own_fields = True
    ivf.cp.spherical = True  # centroids normalised: the right k-means for cosine
    ivf.cp.max_points_per_centroid = _TRAIN_PER_LIST
    return ivf


def _list_of_each_vector(ivf: faiss.IndexIVF) -> NDArray[np.int64]:
    """The list every vector (by id) is filed in."""
    out = np.empty(ivf.ntotal, np.int64)
    lists = ivf.invlists
    for list_no in range(ivf.nlist):
        size = lists.list_size(list_no)
        if size:
            out[faiss.rev_swig_ptr(lists.get_ids(list_no), size)] = list_no
    return out


class FaissIndex:
    name = "dense"

    def __init__(self, dim: int, config: DenseIndexConfig | None = None) -> None:
        self.dim = dim
        self.config = config if config is not None else DenseIndexConfig()
        self._index: faiss.Index = _flat(dim)
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

    @property
    def approximate(self) -> bool:
        """Whether searches go through IVF lists (False: exhaustive and exact)."""
        return isinstance(self._index, faiss.IndexIVF)

    @property
    def nlist(self) -> int:
        return int(self._index.nlist) if self.approximate else 0

    @property
    def nprobe(self) -> int:
        """Lists a search starts with (it searches more when they hold too few allowed rows)."""
        if not self.approximate:
            return 0
        return min(self.config.nprobe or default_nprobe(self.nlist), self.nlist)

    def add(self, vectors: NDArray[np.float32], owners: NDArray[np.int64], rows: int) -> None:
        """Append rows new rows; owners[i] (0..rows-1) is the new row that vectors[i] belongs to."""
        owners = np.asarray(owners, np.int64)
        if len(vectors) != len(owners) or (len(owners) and not 0 <= owners.min() <= owners.max() < rows):
            raise ValueError("each vector needs an owner among the new rows")
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)
        start = self.vector_count
        if self.approximate:
            self._index.add(vectors)  # an IVF index numbers what it adds ntotal, ntotal+1, ...
        else:
            self._index.add_with_ids(vectors, np.arange(start, start + len(vectors), dtype=np.int64))
        self._owners.append(owners + self._rows)
        self._rows += rows
        self.fit()

    def fit(self) -> None:
        """Make the index the kind its size calls for: IVF from config.ann_min_vectors vectors on
        (trained again once it has grown to want twice the lists it has), flat below. add and
        keep call it; call it on a loaded index to apply another config now."""
        n, threshold = self.vector_count, self.config.ann_min_vectors
        if not threshold or n < threshold:
            if self.approximate:
                vectors = self.vectors()
                self._index = _flat(self.dim)
                self._index.add_with_ids(vectors, np.arange(n, dtype=np.int64))
            return
        if self.approximate and nlist_for(n) < 2 * self.nlist:
            return
        vectors = self.vectors()
        ivf = _ivf(self.dim, nlist_for(n))
        ivf.train(vectors)
        ivf.add(vectors)
        self._index = ivf

    def vectors(self) -> NDArray[np.float32]:
        """Every vector, by id (float16 precision once approximate)."""
        if not self.vector_count:
            return np.zeros((0, self.dim), np.float32)
        if self.approximate:
            return np.asarray(self._index.reconstruct_n(0, self.vector_count), np.float32)
        # Ids are 0..n-1 in insertion order, so the flat storage is already id-ordered.
        return np.asarray(faiss.downcast_index(self._index.index).reconstruct_n(0, self.vector_count), np.float32)

    def keep(self, rows: NDArray[np.int64]) -> None:
        """Keep only these rows, renumbered 0..len(rows)-1 in this order (deleting documents).
        An IVF index keeps its lists (no training) while it stays large enough to be one."""
        new_row = np.full(len(self), -1, np.int64)
        new_row[rows] = np.arange(len(rows))
        remapped = new_row[self._owner]
        kept = np.flatnonzero(remapped >= 0)
        kept = kept[np.argsort(remapped[kept], kind="stable")]
        vectors = np.ascontiguousarray(self.vectors()[kept])
        ids = np.arange(len(kept), dtype=np.int64)
        threshold = self.config.ann_min_vectors
        if self.approximate and threshold and len(kept) >= threshold:
            lists = np.ascontiguousarray(_list_of_each_vector(self._index)[kept])
            ivf = _ivf(self.dim, self.nlist)
            ivf.quantizer.add(self._index.quantizer.reconstruct_n(0, self.nlist))
            ivf.is_trained = True  # float16 codes need no training; the lists are the old ones
            ivf.add_core(len(kept), faiss.swig_ptr(vectors), faiss.swig_ptr(ids), faiss.swig_ptr(lists))
            self._index = ivf
        else:
            self._index = _flat(self.dim)
            self._index.add_with_ids(vectors, ids)
        self._owners = [remapped[kept]]
        self._rows = len(rows)
        self.fit()

    def search(self, query: NDArray[np.float32], k: int, mask: NDArray[np.bool_] | None = None) -> list[tuple[int, float]]:
        """Up to k (row, best cosine) pairs, best first; mask (per row) limits the search inside
        FAISS. Fewer than k only when fewer than k rows (allowed by mask) have vectors: an IVF
        search whose lists hold too few allowed rows searches more lists, up to all of them."""
        if not self.vector_count or k <= 0:
            return []
        selector = bitmap = None
        searchable = self.vector_count
        if mask is not None:
            allowed = np.asarray(mask, np.bool_)[self._owner]
            searchable = int(np.count_nonzero(allowed))
            if not searchable:
                return []
            # Bit i: vector id i. The selector points into bitmap, which lives until we return.
            # A bitmap costs 0.2 ms at 612k vectors; an IDSelectorBatch of the 465k allowed ids
            # (a hash set) took 66 ms to build, per query.
            bitmap = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        query = np.ascontiguousarray(query, np.float32).reshape(1, -1)
        nprobe = self.nprobe
        fetch = min(k * _FETCH_PER_ROW, searchable)
        while True:
            if nprobe:
                params: faiss.SearchParameters | None = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
            else:
                params = faiss.SearchParameters(sel=selector) if selector is not None else None
            scores, ids = self._index.search(query, fetch, params=params)
            found = ids[0] >= 0
            owners = self._owner[ids[0][found]]
            # Results come best first, so a row's first vector is its best.
            _, first = np.unique(owners, return_index=True)
            first.sort()
            if len(first) >= k or (found.all() and fetch >= searchable) or (not found.all() and nprobe >= self.nlist):
                return [(int(owners[i]), float(scores[0][i])) for i in first[:k]]
            if found.all():
                fetch = min(fetch * 4, searchable)  # a few long chunks filled the fetched vectors
            else:
                nprobe = min(nprobe * 4, self.nlist)  # the lists searched ran out of (allowed) vectors

    def save(self, directory: Path) -> None:
        faiss.write_index(self._index, str(directory / "dense.faiss"))
        np.savez(directory / "dense_rows.npz", owner=self._owner, rows=self._rows)

    @classmethod
    def load(cls, directory: Path, config: DenseIndexConfig | None = None) -> FaissIndex:
        """The index as saved, flat or IVF (a flat one becomes IVF on its next add or keep once
        it holds config.ann_min_vectors vectors)."""
        raw = faiss.read_index(str(directory / "dense.faiss"))  # comes back as its concrete class
        index = cls(raw.d, config)
        index._index = raw
        with np.load(directory / "dense_rows.npz") as rows:
            index._owners, index._rows = [rows["owner"]], int(rows["rows"])
        return index
