"""Reciprocal rank fusion (Cormack et al., 2009): pure functions over ranked lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RRF_K = 60  # the constant from the paper; damps the head of each list


def fuse_rrf(
    ranked: Mapping[str, Sequence[int]], weights: Mapping[str, float], k: int = RRF_K
) -> list[tuple[int, float]]:
    """(item, fused score) best first: score = sum over lists of weight / (k + rank), rank 1-based.
    A list with weight 0 (or absent from weights) contributes nothing; ties keep first-seen order."""
    fused: dict[int, float] = {}
    for name, items in ranked.items():
        weight = weights.get(name, 0.0)
        if weight <= 0:
            continue
        for rank, item in enumerate(items, 1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: -pair[1])
