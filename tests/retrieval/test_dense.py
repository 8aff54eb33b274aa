from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from citekb.ingest.errors import ConfigError
from citekb.retrieval.config import DenseIndexConfig
from citekb.retrieval.dense import FaissIndex, default_nprobe, nlist_for

from fakes import HashEmbedder


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


E = np.eye(4, dtype=np.float32)
# Row 0 owns two vectors (e0 and e1), row 1 owns e2, row 2 owns (e0 + e3)/sqrt(2).
VECTORS = np.stack([E[0], E[1], E[2], unit(1, 0, 0, 1)])
OWNERS = np.array([0, 0, 1, 2], dtype=np.int64)
HALF = float(1 / np.sqrt(2))


@pytest.fixture
def index() -> FaissIndex:
    idx = FaissIndex(4)
    idx.add(VECTORS, OWNERS, 3)
    return idx


def rows(results: list[tuple[int, float]]) -> list[int]:
    return [row for row, _ in results]


def test_sizes(index: FaissIndex) -> None:
    assert (len(index), index.vector_count, index.dim) == (3, 4, 4)
    np.testing.assert_array_equal(index.vectors(), VECTORS)


def test_search_scores_a_row_by_its_best_vector(index: FaissIndex) -> None:
    results = index.search(E[0], k=3)
    assert rows(results) == [0, 2, 1]
    assert [s for _, s in results] == pytest.approx([1.0, HALF, 0.0], abs=1e-6)
    # Row 0's second vector (e1) makes it the best match for e1 as well.
    assert index.search(E[1], k=1) == [(0, pytest.approx(1.0))]


def test_search_returns_at_most_k_rows_each_once(index: FaissIndex) -> None:
    query = unit(1, 1, 0, 1)
    results = index.search(query, k=2)
    assert len(results) == 2 and len(set(rows(results))) == 2
    assert index.search(query, k=0) == []
    assert FaissIndex(4).search(query, k=3) == []


def test_mask_limits_rows(index: FaissIndex) -> None:
    mask = np.array([False, True, True])
    assert rows(index.search(E[0], k=3, mask=mask)) == [2, 1]
    assert index.search(E[0], k=3, mask=np.zeros(3, dtype=bool)) == []


def test_second_add_numbers_rows_after_the_first(index: FaissIndex) -> None:
    index.add(np.stack([E[3], E[3]]), np.array([1, 1]), 2)  # rows 3 (no vectors) and 4
    assert (len(index), index.vector_count) == (5, 6)
    assert index.search(E[3], k=1) == [(4, pytest.approx(1.0))]


def test_add_rejects_owners_outside_the_new_rows(index: FaissIndex) -> None:
    with pytest.raises(ValueError):
        index.add(E[:2], np.array([0, 2]), 2)
    with pytest.raises(ValueError):
        index.add(E[:2], np.array([0]), 1)
    assert (len(index), index.vector_count) == (3, 4)


def test_keep_deletes_and_renumbers_rows(index: FaissIndex) -> None:
    index.keep(np.array([2, 0], dtype=np.int64))  # delete row 1; old row 2 becomes 0, old 0 becomes 1
    assert (len(index), index.vector_count) == (2, 3)
    assert rows(index.search(E[0], k=5)) == [1, 0]
    assert index.search(E[1], k=1) == [(1, pytest.approx(1.0))]
    # The deleted row's vector (e2) is gone: nothing matches it any more.
    leftovers = index.search(E[2], k=5)
    assert sorted(rows(leftovers)) == [0, 1]
    assert [s for _, s in leftovers] == pytest.approx([0.0, 0.0], abs=1e-6)


def test_keep_equals_a_fresh_index_over_the_remaining_rows() -> None:
    embedder = HashEmbedder(dim=16)
    texts = ["pump filter", "annual leave days", "grease the bearings", "hotel per night", "laptop encryption"]
    vectors = embedder.embed(texts)
    index = FaissIndex(16)
    index.add(vectors, np.arange(5), 5)
    keep = np.array([4, 1, 3], dtype=np.int64)
    index.keep(keep)
    fresh = FaissIndex(16)
    fresh.add(vectors[keep], np.arange(3), 3)
    for query in embedder.embed(["pump", "leave days", "hotel laptop"]):
        assert rows(index.search(query, k=3)) == rows(fresh.search(query, k=3))
        assert [s for _, s in index.search(query, k=3)] == pytest.approx([s for _, s in fresh.search(query, k=3)])


def test_save_load_round_trip(index: FaissIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    loaded = FaissIndex.load(tmp_path)
    assert (len(loaded), loaded.vector_count, loaded.dim) == (3, 4, 4)
    for query in (E[0], E[1], unit(0, 1, 1, 1)):
        assert loaded.search(query, k=3) == index.search(query, k=3)
    assert rows(loaded.search(E[0], k=3, mask=np.array([False, False, True]))) == [2]
    loaded.add(E[3:4], np.array([0]), 1)
    assert loaded.search(E[3], k=1) == [(3, pytest.approx(1.0))]


def test_a_row_with_many_vectors_does_not_crowd_out_the_others() -> None:
    import numpy as np
    from citekb.retrieval.dense import FaissIndex

    dim = 4
    index = FaissIndex(dim)
    close = np.tile(np.array([[1.0, 0.0, 0.0, 0.0]], np.float32), (50, 1))  # row 0: 50 near-identical sentences
    others = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], np.float32)  # rows 1 and 2
    index.add(np.vstack([close, others]), np.array([0] * 50 + [1, 2]), rows=3)
    rows = [row for row, _ in index.search(np.array([1.0, 0.1, 0.0, 0.0], np.float32), k=3)]
    assert rows == [0, 1, 2]


# ---- the approximate (IVF) index, with the threshold lowered to small clustered data

DIM = 32
# 16 of its ~70 lists: the default (default_nprobe) is measured for hundreds of thousands of vectors.
SMALL = DenseIndexConfig(ann_min_vectors=2_000, nprobe=16)


def clustered(n: int, seed: int, clusters: int = 40) -> np.ndarray:
    """n unit vectors around random centres, as sentence vectors of related texts are."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    points = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


# 1,200 rows of 1-5 sentence vectors each: about 3,600 vectors.
OWNER_COUNTS = np.random.default_rng(1).integers(1, 6, 1_200)
IVF_OWNERS = np.repeat(np.arange(len(OWNER_COUNTS)), OWNER_COUNTS).astype(np.int64)
IVF_VECTORS = clustered(len(IVF_OWNERS), seed=2)
QUERIES = clustered(40, seed=3)


def build(config: DenseIndexConfig | None, blocks: int = 4) -> FaissIndex:
    """The vectors added a few documents' worth at a time, as ingest does."""
    index = FaissIndex(DIM, config)
    bounds = np.linspace(0, len(OWNER_COUNTS), blocks + 1).astype(int)
    for lo, hi in itertools.pairwise(bounds):
        sel = (IVF_OWNERS >= lo) & (IVF_OWNERS < hi)
        index.add(IVF_VECTORS[sel], IVF_OWNERS[sel] - lo, hi - lo)
    return index


def recall(approx: FaissIndex, exact: FaissIndex, k: int, mask: np.ndarray | None = None) -> float:
    found = [len(set(rows(approx.search(q, k, mask))) & set(rows(exact.search(q, k, mask)))) for q in QUERIES]
    return sum(found) / (k * len(QUERIES))


@pytest.fixture(scope="module")
def exact() -> FaissIndex:
    return build(None)


@pytest.fixture
def ivf() -> FaissIndex:
    return build(SMALL)


def test_small_indexes_stay_exact(exact: FaissIndex) -> None:
    assert not exact.approximate and exact.vector_count == len(IVF_VECTORS) > 2_000
    assert not build(DenseIndexConfig(ann_min_vectors=0)).approximate  # 0: never approximate


def test_index_becomes_ivf_when_it_crosses_the_threshold(ivf: FaissIndex, exact: FaissIndex) -> None:
    # Trained when the third of four blocks took it past 2,000 vectors; not again for the fourth.
    assert ivf.approximate and nlist_for(2_000) < ivf.nlist < nlist_for(len(IVF_VECTORS)) and ivf.nprobe == 16
    assert (len(ivf), ivf.vector_count) == (len(exact), exact.vector_count)
    assert recall(ivf, exact, 10) >= 0.95
    assert recall(ivf, exact, 100) >= 0.93
    assert build(DenseIndexConfig(ann_min_vectors=2_000)).nprobe == default_nprobe(ivf.nlist) == 9  # 12%
    # Scores are cosines of float16 vectors: the exact ones to about 1e-3.
    exact_scores = dict(exact.search(QUERIES[0], 50))
    for row, score in ivf.search(QUERIES[0], 10):
        assert score == pytest.approx(exact_scores[row], abs=2e-3)


def test_all_lists_is_exact_search(exact: FaissIndex) -> None:
    index = build(DenseIndexConfig(ann_min_vectors=2_000, nprobe=10_000))
    assert index.nprobe == index.nlist
    for q in QUERIES:  # the same scores rank by rank (float16: to about 1e-3; ties may swap rows)
        got, want = index.search(q, 20), exact.search(q, 20)
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=2e-3)


def test_mask_limits_ivf_rows_and_never_returns_too_few(ivf: FaissIndex, exact: FaissIndex) -> None:
    half = np.arange(len(ivf)) % 2 == 0
    for q in QUERIES[:10]:
        assert all(half[r] for r in rows(ivf.search(q, 30, half)))
    assert recall(ivf, exact, 30, half) >= 0.93
    # Three allowed rows are rarely all in the lists searched first: the search widens to all.
    few = np.zeros(len(ivf), np.bool_)
    few[[5, 600, 1_111]] = True
    for q in QUERIES:
        assert sorted(rows(ivf.search(q, 10, few))) == [5, 600, 1_111]
    assert rows(ivf.search(QUERIES[0], 2, few)) == rows(exact.search(QUERIES[0], 2, few))
    assert ivf.search(QUERIES[0], 10, np.zeros(len(ivf), np.bool_)) == []


def test_unmasked_ivf_search_returns_k_rows_even_past_its_lists(ivf: FaissIndex) -> None:
    assert len(ivf.search(QUERIES[0], 1_000)) == 1_000
    assert len(ivf.search(QUERIES[0], 5_000)) == len(ivf)


def test_add_after_the_switch(ivf: FaissIndex) -> None:
    nlist = ivf.nlist
    new = clustered(3, seed=9)
    ivf.add(new, np.array([0, 0, 1]), 2)
    assert (len(ivf), ivf.vector_count, ivf.nlist) == (1_202, len(IVF_VECTORS) + 3, nlist)
    assert ivf.search(new[0], 1) == [(1_200, pytest.approx(1.0, abs=1e-3))]
    assert ivf.search(new[2], 1) == [(1_201, pytest.approx(1.0, abs=1e-3))]


def test_ivf_trains_again_when_it_outgrows_its_lists() -> None:
    index = FaissIndex(DIM, DenseIndexConfig(ann_min_vectors=1_000))
    index.add(IVF_VECTORS[:1_000], np.arange(1_000), 1_000)
    assert index.nlist == 1_000 // 39
    index.add(IVF_VECTORS[1_000:3_000], np.arange(2_000), 2_000)  # 3,000 vectors want 76 lists
    assert index.nlist == 3_000 // 39
    np.testing.assert_allclose(index.vectors(), IVF_VECTORS[:3_000], atol=1e-3)


def test_keep_on_ivf_keeps_its_lists_and_matches_a_fresh_index(ivf: FaissIndex) -> None:
    nlist = ivf.nlist
    keep = np.flatnonzero(np.arange(len(ivf)) % 10 != 3)  # about 3,200 vectors stay: still IVF
    ivf.keep(keep)
    assert ivf.approximate and ivf.nlist == nlist and len(ivf) == len(keep)
    sel = np.isin(IVF_OWNERS, keep)
    np.testing.assert_allclose(ivf.vectors(), IVF_VECTORS[sel], atol=1e-3)
    fresh = FaissIndex(DIM)
    fresh.add(IVF_VECTORS[sel], np.searchsorted(keep, IVF_OWNERS[sel]), len(keep))
    assert recall(ivf, fresh, 10) >= 0.93


def test_keep_below_the_threshold_is_exact_again(ivf: FaissIndex) -> None:
    keep = np.arange(0, len(ivf), 2)  # about 1,800 vectors: below 2,000
    ivf.keep(keep)
    assert not ivf.approximate
    fresh = FaissIndex(DIM)
    sel = np.isin(IVF_OWNERS, keep)
    fresh.add(IVF_VECTORS[sel], IVF_OWNERS[sel] // 2, len(keep))
    assert recall(ivf, fresh, 10) == 1.0


def test_ivf_save_load_round_trip(ivf: FaissIndex, tmp_path: Path) -> None:
    ivf.save(tmp_path)
    loaded = FaissIndex.load(tmp_path, SMALL)
    assert loaded.approximate and (loaded.nlist, len(loaded), loaded.vector_count) == (ivf.nlist, len(ivf), ivf.vector_count)
    mask = np.arange(len(ivf)) % 3 == 0
    for q in QUERIES[:10]:
        assert loaded.search(q, 10) == ivf.search(q, 10)
        assert loaded.search(q, 10, mask) == ivf.search(q, 10, mask)
    np.testing.assert_array_equal(loaded.vectors(), ivf.vectors())
    loaded.add(E[:1, :].repeat(8, axis=1), np.array([0]), 1)
    assert loaded.search(E[0].repeat(8), 1)[0][0] == len(ivf)


def test_vectors_round_trip_through_export_and_import(ivf: FaissIndex) -> None:
    vectors = ivf.vectors()
    assert vectors.dtype == np.float32 and vectors.shape == IVF_VECTORS.shape
    np.testing.assert_allclose(vectors, IVF_VECTORS, atol=1e-3)  # float16: near-lossless
    again = FaissIndex(DIM, SMALL)
    again.add(vectors, IVF_OWNERS, len(OWNER_COUNTS))
    np.testing.assert_array_equal(again.vectors(), vectors)  # float16 to float16 is exact


def test_an_old_flat_index_loads_and_becomes_ivf_on_its_next_write(exact: FaissIndex, tmp_path: Path) -> None:
    exact.save(tmp_path)
    loaded = FaissIndex.load(tmp_path, SMALL)
    assert not loaded.approximate and loaded.search(QUERIES[0], 5) == exact.search(QUERIES[0], 5)
    loaded.add(QUERIES[:1], np.array([0]), 1)
    assert loaded.approximate and recall(loaded, exact, 10) >= 0.93


def test_config_rejects_bad_values() -> None:
    for bad in (-1, 500):  # below 1,000 vectors k-means has too few to train its lists on
        with pytest.raises(ConfigError, match="ann_min_vectors"):
            DenseIndexConfig(ann_min_vectors=bad)
    with pytest.raises(ConfigError, match="nprobe"):
        DenseIndexConfig(nprobe=0)
