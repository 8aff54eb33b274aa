from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from citekb.retrieval.dense import FaissIndex

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
