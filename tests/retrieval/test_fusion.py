from __future__ import annotations

import pytest

from citekb.retrieval.fusion import RRF_K, fuse_rrf, fuse_scores

# Two legs that disagree: item 2 is second by keywords and first by meaning.
LEGS = {
    "bm25": [(1, 9.0), (2, 5.0), (3, 1.0)],
    "dense": [(2, 0.9), (4, 0.8), (1, 0.1)],
}


def as_dict(fused: list[tuple[int, float]]) -> dict[int, float]:
    return dict(fused)


def test_rrf_by_hand() -> None:
    fused = fuse_rrf(LEGS, {"bm25": 1.0, "dense": 1.0})
    assert [item for item, _ in fused] == [2, 1, 4, 3]
    assert as_dict(fused) == pytest.approx({
        2: 1 / 62 + 1 / 61,
        1: 1 / 61 + 1 / 63,
        4: 1 / 62,
        3: 1 / 63,
    })
    assert RRF_K == 60


def test_rrf_weights_scale_each_leg() -> None:
    fused = fuse_rrf(LEGS, {"bm25": 2.0, "dense": 0.5})
    assert as_dict(fused) == pytest.approx({
        1: 2 / 61 + 0.5 / 63,
        2: 2 / 62 + 0.5 / 61,
        3: 2 / 63,
        4: 0.5 / 62,
    })
    assert [item for item, _ in fused] == [1, 2, 3, 4]


@pytest.mark.parametrize("weights", [{"bm25": 1.0, "dense": 0.0}, {"bm25": 1.0}, {"bm25": 1.0, "dense": -1.0}])
def test_rrf_ignores_a_leg_with_zero_or_no_weight(weights: dict[str, float]) -> None:
    assert fuse_rrf(LEGS, weights) == [(1, pytest.approx(1 / 61)), (2, pytest.approx(1 / 62)), (3, pytest.approx(1 / 63))]


def test_rrf_k_parameter() -> None:
    fused = fuse_rrf({"bm25": [(7, 3.0), (8, 2.0)]}, {"bm25": 1.0}, k=1)
    assert fused == [(7, pytest.approx(1 / 2)), (8, pytest.approx(1 / 3))]


def test_rrf_uses_ranks_not_scores() -> None:
    close = fuse_rrf({"bm25": [(1, 10.0), (2, 9.99)]}, {"bm25": 1.0})
    far = fuse_rrf({"bm25": [(1, 10.0), (2, 0.01)]}, {"bm25": 1.0})
    assert close == far


def test_rrf_ties_keep_first_seen_order() -> None:
    fused = fuse_rrf({"bm25": [(5, 1.0)], "dense": [(7, 1.0)]}, {"bm25": 1.0, "dense": 1.0})
    assert fused == [(5, pytest.approx(1 / 61)), (7, pytest.approx(1 / 61))]


def test_rrf_of_nothing_is_empty() -> None:
    assert fuse_rrf({}, {"bm25": 1.0}) == []
    assert fuse_rrf({"bm25": []}, {"bm25": 1.0}) == []


def test_score_fusion_by_hand() -> None:
    legs = {"bm25": [(1, 8.0), (2, 4.0), (3, 2.0)], "dense": [(2, 0.5), (4, 0.25)]}
    fused = fuse_scores(legs, {"bm25": 1.0, "dense": 1.0})
    # Each leg divided by its best score: bm25 by 8, dense by 0.5.
    assert fused == [
        (2, pytest.approx(4 / 8 + 0.5 / 0.5)),
        (1, pytest.approx(8 / 8)),
        (4, pytest.approx(0.25 / 0.5)),
        (3, pytest.approx(2 / 8)),
    ]
    weighted = as_dict(fuse_scores(legs, {"bm25": 3.0, "dense": 1.0}))
    assert weighted == pytest.approx({1: 3.0, 2: 3 * 4 / 8 + 1.0, 3: 3 * 2 / 8, 4: 0.5})


def test_score_fusion_ignores_zero_weight_and_non_positive_legs() -> None:
    legs = {"bm25": [(1, 2.0), (2, 1.0)], "dense": [(3, 0.9)]}
    assert fuse_scores(legs, {"bm25": 1.0, "dense": 0.0}) == [(1, pytest.approx(1.0)), (2, pytest.approx(0.5))]
    negative = {"bm25": [(1, 2.0)], "dense": [(3, -0.1), (1, -0.5)]}
    assert fuse_scores(negative, {"bm25": 1.0, "dense": 1.0}) == [(1, pytest.approx(1.0))]


def test_score_fusion_clips_negative_scores_to_zero() -> None:
    fused = fuse_scores({"dense": [(1, 0.4), (2, -0.2)]}, {"dense": 1.0})
    assert fused == [(1, pytest.approx(1.0)), (2, pytest.approx(0.0))]
