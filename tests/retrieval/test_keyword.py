from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from citekb.retrieval.keyword import Bm25Index

# "the" and "pump" are in more than half of the documents: their raw idf is negative, so both
# implementations must floor it at epsilon * mean idf. Document lengths differ, terms repeat.
CORPUS = [
    "the pump needs a new filter the filter is clogged".split(),
    "the pump runs hot when the filter is clogged".split(),
    "grease the pump bearings once a year".split(),
    "the warranty covers the pump for two years".split(),
    "return the old pump to a service centre".split(),
    "the cat sat on the mat".split(),
    "annual leave is twenty seven days".split(),
    "leave requests go through the portal portal portal".split(),
]
QUERIES = [
    ["filter"],
    ["pump", "filter"],
    ["the", "pump"],  # both common: only the epsilon-floored idf scores them
    ["leave", "leave", "portal"],  # a repeated query term counts twice
    ["grease", "warranty", "years", "year"],
    ["absent"],
    [],
]


def build(docs: list[list[str]]) -> Bm25Index:
    index = Bm25Index()
    index.add(docs)
    return index


def ranking(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.lexsort((np.arange(len(scores)), -np.round(scores, 4))) if scores[i] > 0]


def test_sample_has_terms_with_negative_idf() -> None:
    n = len(CORPUS)
    assert sum("the" in d for d in CORPUS) > n / 2 and sum("pump" in d for d in CORPUS) > n / 2


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: "+".join(q) or "empty")
def test_scores_equal_rank_bm25(query: list[str]) -> None:
    reference = BM25Okapi(CORPUS).get_scores(query)
    ours = build(CORPUS).scores(query)
    assert ours.shape == (len(CORPUS),)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_scores_equal_rank_bm25_with_other_parameters() -> None:
    reference = BM25Okapi(CORPUS, k1=1.2, b=0.5, epsilon=0.1).get_scores(["the", "pump", "leave"])
    index = Bm25Index(k1=1.2, b=0.5, epsilon=0.1)
    index.add(CORPUS)
    np.testing.assert_allclose(index.scores(["the", "pump", "leave"]), reference, atol=1e-4)


@pytest.mark.parametrize("query", QUERIES[:5], ids=lambda q: "+".join(q))
def test_search_ranking_equals_rank_bm25(query: list[str]) -> None:
    reference = BM25Okapi(CORPUS).get_scores(query)
    hits = build(CORPUS).search(query, k=len(CORPUS))
    assert [row for row, _ in hits] == ranking(reference)
    np.testing.assert_allclose([s for _, s in hits], reference[[row for row, _ in hits]], atol=1e-4)


def test_search_returns_top_k_best_first() -> None:
    hits = build(CORPUS).search(["pump", "filter"], k=2)
    assert [row for row, _ in hits] == [0, 1]
    assert hits[0][1] > hits[1][1] > 0


def test_search_without_matches_is_empty() -> None:
    assert build(CORPUS).search(["absent"], k=5) == []
    assert Bm25Index().search(["pump"], k=5) == []


def test_adding_in_two_batches_equals_one_batch() -> None:
    split = Bm25Index()
    split.add(CORPUS[:3])
    split.scores(["pump"])  # weights built in between must be rebuilt after the next add
    split.add(CORPUS[3:])
    whole = build(CORPUS)
    assert len(split) == len(whole) == len(CORPUS)
    for query in QUERIES:
        np.testing.assert_allclose(split.scores(query), whole.scores(query), atol=1e-6)


def test_keep_equals_a_fresh_index_over_the_remaining_docs() -> None:
    rows = np.array([7, 1, 2, 5], dtype=np.int64)  # delete 0, 3, 4, 6; reorder the rest
    index = build(CORPUS)
    index.scores(["pump"])
    index.keep(rows)
    fresh = build([CORPUS[i] for i in rows])
    assert len(index) == 4
    # "warranty" and "annual" now only linger in the vocabulary; they must not skew mean idf.
    for query in QUERIES + [["warranty"], ["annual", "leave"]]:
        np.testing.assert_allclose(index.scores(query), fresh.scores(query), atol=1e-5)
        np.testing.assert_allclose(index.scores(query), BM25Okapi([CORPUS[i] for i in rows]).get_scores(query), atol=1e-4)


def test_keep_nothing_leaves_an_empty_index() -> None:
    index = build(CORPUS)
    index.keep(np.array([], dtype=np.int64))
    assert len(index) == 0
    assert index.search(["pump"], k=3) == []
    assert index.scores(["pump"]).shape == (0,)


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = Bm25Index(k1=1.2, b=0.7, epsilon=0.3)
    index.add(CORPUS + [["中文", "词语", "pump"]])
    index.save(tmp_path)
    loaded = Bm25Index.load(tmp_path)
    assert (loaded.k1, loaded.b, loaded.epsilon, len(loaded)) == (1.2, 0.7, 0.3, len(CORPUS) + 1)
    for query in QUERIES + [["中文"]]:
        np.testing.assert_allclose(loaded.scores(query), index.scores(query), atol=1e-6)
    loaded.add([["pump", "new"]])  # the vocabulary survived: new docs extend it consistently
    assert loaded.search(["new"], k=1) == [(len(CORPUS) + 1, pytest.approx(loaded.scores(["new"])[-1]))]


def test_search_with_a_mask_never_returns_masked_rows() -> None:
    index = build(CORPUS)
    mask = np.zeros(len(CORPUS), dtype=bool)
    mask[[1, 2, 6]] = True
    hits = index.search(["pump", "filter", "leave"], k=10, mask=mask)
    assert [row for row, _ in hits] == [1, 6, 2]
    unmasked = dict(index.search(["pump", "filter", "leave"], k=10))
    assert all(score == pytest.approx(unmasked[row]) for row, score in hits)  # masking does not rescore
    assert index.search(["pump"], k=10, mask=np.zeros(len(CORPUS), dtype=bool)) == []
