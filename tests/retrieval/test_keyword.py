from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi

from citekb.retrieval import keyword
from citekb.retrieval.analyze import analyze
from citekb.retrieval.config import RetrievalConfig
from citekb.retrieval.indexing import dense_units
from citekb.retrieval.keyword import Bm25Index, _Weights, unit_scores
from citekb.retrieval.search import HybridSearcher
from citekb.retrieval.store import Snapshot

from fakes import HashEmbedder

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


# --------------------------------------------------------------------------- pruned search
# Bm25Index.search prunes (MaxScore) where a query's posting lists are long; its answer must be
# the exhaustive one: the same rows, the same float32 scores to the bit, the same order (score
# descending, then row ascending), ties at the k-th place included.

VOCAB = [f"w{i}" for i in range(12)]


@st.composite
def corpora(draw: st.DrawFn) -> list[list[str]]:
    # Skewed term choice: a few terms are in most documents (negative raw idf), most are rare.
    n_docs = draw(st.integers(1, 60))
    doc = st.lists(st.sampled_from(VOCAB[:3]) | st.sampled_from(VOCAB), min_size=0, max_size=12)
    docs = draw(st.lists(doc, min_size=n_docs, max_size=n_docs))
    return docs * draw(st.sampled_from([1, 1, 3]))  # repeated documents tie


def weights_and_query(index: Bm25Index, query: list[str], seed_rows: int) -> tuple[_Weights, np.ndarray, np.ndarray]:
    weights = _Weights.of(index._weight_matrix().matrix, seed_rows=seed_rows)
    cols, mult = index._query(query)
    return weights, cols, mult


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=corpora(), query=st.lists(st.sampled_from(VOCAB + ["absent"]), min_size=1, max_size=8),
       k=st.integers(1, 20), seed_rows=st.integers(1, 6), masked=st.booleans(), mask_seed=st.integers(0, 2**16),
       search_cost=st.sampled_from([0.0, 30.0, 1e9]))
def test_pruned_search_equals_exhaustive(docs: list[list[str]], query: list[str], k: int, seed_rows: int, masked: bool,
                                         mask_seed: int, search_cost: float) -> None:
    index = build(docs)
    weights, cols, mult = weights_and_query(index, query, seed_rows)
    mask = np.random.default_rng(mask_seed).random(len(docs)) < 0.6 if masked else None
    exhaustive = index._search_exhaustive(weights, cols, mult, k, mask) if len(cols) else []
    if len(cols):
        pruned = index._search_pruned(weights, cols, mult, k, mask, search_cost=search_cost)
        if pruned is not None:
            assert pruned == exhaustive  # tuples of int and float: exact equality
    assert index.search(query, k, mask) == exhaustive
    with patch.object(keyword, "_PRUNE_MIN_POSTINGS", 0):  # search prunes whatever the size
        assert index.search(query, k, mask) == exhaustive
    scores = index.scores(query)
    if mask is not None:
        scores = np.where(mask, scores, 0)
    expected = [int(i) for i in np.lexsort((np.arange(len(docs)), -scores)) if scores[i] > 0][:k]
    assert [row for row, _ in exhaustive] == expected


def test_pruning_skips_columns_and_keeps_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rare, heavy terms and a common, light one: the light one cannot lift a row without the
    # heavy ones into the top 3, so its column is never summed (only looked up for candidates).
    rng = np.random.default_rng(0)
    docs = [["common"] * int(rng.integers(1, 4)) + [f"filler{i % 50}"] for i in range(3000)]
    for row in rng.choice(3000, 40, replace=False):
        docs[row] += ["rare", "heavy"] if row % 2 else ["rare"]
    index = build(docs)
    weights, cols, mult = weights_and_query(index, ["common", "rare", "heavy", "rare"], seed_rows=8)
    summed: list[list[int]] = []
    column_sums = _Weights.column_sums
    monkeypatch.setattr(_Weights, "column_sums", lambda self, c, m, out=None: summed.append(c.tolist()) or column_sums(self, c, m, out))
    pruned = index._search_pruned(weights, cols, mult, 3, None)
    assert pruned == index._search_exhaustive(weights, cols, mult, 3, None)
    assert len(summed) == 2  # once by the pruned search (no second, completing sum), once by the exhaustive
    assert index._vocab["common"] not in summed[0] and index._vocab["rare"] in summed[0]


def test_search_breaks_ties_by_row() -> None:
    docs = [["pump", "filter", "a"], ["pump", "b"], ["filter", "valve", "c"], ["d"], ["e"], ["f"]] * 4
    hits = build(docs).search(["pump", "filter"], k=6)  # every score occurs 4 times
    assert [row for row, _ in hits] == [0, 6, 12, 18, 1, 7]  # 13 and 19 tie with 1 and 7: left out
    assert hits[3][1] > hits[4][1] == hits[5][1]


def test_a_mask_that_leaves_few_rows_falls_back_to_exhaustive() -> None:
    docs = [["common", f"t{i % 7}"] for i in range(500)]
    index = build(docs)
    weights, cols, mult = weights_and_query(index, ["common", "t3"], seed_rows=4)
    mask = np.zeros(500, dtype=bool)
    mask[[3, 10, 17]] = True
    assert index._search_pruned(weights, cols, mult, 10, mask) is None
    assert [row for row, _ in index.search(["common", "t3"], 10, mask)] == [3, 10, 17]


def test_column_sums_without_scipys_kernel_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    index = build(CORPUS * 3)
    fast = {tuple(q): index.scores(q) for q in QUERIES}
    monkeypatch.setattr(keyword, "_csc_matvec", None)
    for query in QUERIES:
        assert np.array_equal(index.scores(query), fast[tuple(query)])


def test_weights_are_those_of_the_whole_matrix_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    # The build computes weights a block of columns at a time, in place (less memory); the
    # values must be those of the one-shot formula, to the bit.
    rng = np.random.default_rng(1)
    docs = [[f"w{int(t)}" for t in rng.zipf(1.5, int(rng.integers(0, 30))) if t < 400] for _ in range(3000)]
    index = Bm25Index(k1=1.2, b=0.6)
    index.add(docs)
    monkeypatch.setattr(keyword, "_BUILD_NONZEROS", 257)
    built = index._build().matrix
    tf = index._tf
    doc_len = np.asarray(tf.sum(axis=1)).ravel()
    df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float64)
    idf = np.log(len(docs) - df + 0.5) - np.log(df + 0.5)
    idf = np.where(idf < 0, 0.25 * idf[df > 0].mean(), idf)
    norm = 1.2 * (1 - 0.6 + 0.6 * doc_len / doc_len.mean())
    coo = tf.tocoo()
    data = idf[coo.col] * coo.data * (1.2 + 1) / (coo.data + norm[coo.row])
    expected = sp.csc_matrix((data.astype(np.float32), (coo.row, coo.col)), shape=tf.shape)
    assert (built != expected).nnz == 0 and np.array_equal(built.indptr, expected.indptr)


# --------------------------------------------------------------------------- sentence scores


@settings(max_examples=200, deadline=None)
@given(units=st.lists(st.lists(st.sampled_from(VOCAB[:3]) | st.sampled_from(VOCAB), max_size=10), min_size=1, max_size=40),
       query=st.lists(st.sampled_from(VOCAB + ["absent"]), max_size=6), k1=st.sampled_from([1.2, 1.5]))
def test_unit_scores_equal_a_built_index_to_the_bit(units: list[list[str]], query: list[str], k1: float) -> None:
    ids = {term: i * 7 + 3 for i, term in enumerate(reversed(VOCAB))}  # ids in no particular order
    flat = np.array([ids[t] for unit in units for t in unit], np.int64)
    lengths = np.array([len(unit) for unit in units], np.int64)
    ours = unit_scores(flat, lengths, [ids[t] for t in query if t in ids], k1=k1)
    reference = Bm25Index(k1=k1)
    reference.add(units)
    assert np.array_equal(ours, reference.scores(query))


def best_sentences_by_building_an_index(snapshot: Snapshot, rows: list[int], terms: list[str]) -> list[tuple[int, float]]:
    """HybridSearcher.best_sentences as it was: a Bm25Index over the rows' sentences."""
    units, owners = [], []
    for row in rows:
        sentences = [analyze(unit) for unit in dense_units(snapshot.chunks[row])]
        units.extend(sentences)
        owners.extend([row] * len(sentences))
    index = Bm25Index(k1=1.2)
    index.add(units)
    best: dict[int, float] = {}
    for row, score in zip(owners, index.scores(terms).tolist()):
        if score > best.get(row, 0.0):
            best[row] = score
    return sorted(best.items(), key=lambda pair: -pair[1])


@pytest.mark.parametrize("query", ["How often do I replace the intake filter?", "security desk extension number",
                                   "the the and of warranty", "nothing matches zzzz"])
def test_best_sentences_equal_those_of_a_built_index(make_snapshot: Callable[..., Snapshot], query: str) -> None:
    snapshot = make_snapshot()
    searcher = HybridSearcher(HashEmbedder(), RetrievalConfig())
    terms = analyze(query)
    everything = list(range(len(snapshot.chunks)))
    for rows in (everything, everything[::-2], everything[:1], everything[:3] * 2):
        assert searcher.best_sentences(snapshot, rows, terms) == best_sentences_by_building_an_index(snapshot, rows, terms)


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: "+".join(q) or "empty")
def test_unit_scores_floor_negative_idf_like_the_index(query: list[str]) -> None:
    ids: dict[str, int] = {}
    flat = np.array([ids.setdefault(t, len(ids)) for doc in CORPUS for t in doc], np.int64)
    lengths = np.array([len(doc) for doc in CORPUS], np.int64)
    ours = unit_scores(flat, lengths, [ids[t] for t in query if t in ids])
    assert np.array_equal(ours, build(CORPUS).scores(query))
    np.testing.assert_allclose(ours, BM25Okapi(CORPUS).get_scores(query), atol=1e-4)


@pytest.mark.parametrize("text", [
    "Replace the intake filter every 45 days; the filters are cheap.",
    "Straße STRASSE ﬁlter ｆｕｌｌｗｉｄｔｈ Ǆemal café cafe\u0301 İstanbul",  # NFKC and casefold at work
    "GDP增长 中华人民共和国 的 机器 and the 离墙 墙壁", "under_score 3.5 kg x86_64", "", "   ", "a an the",
])
def test_analysis_from_the_word_cache_equals_a_cold_one(text: str) -> None:
    import unicodedata

    from citekb.retrieval.analyze import _WORD, _word_terms

    _word_terms.cache_clear()
    cold = analyze(text)
    hits = _word_terms.cache_info().hits
    assert analyze(text) == cold
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    assert _word_terms.cache_info().hits - hits == len(words)  # every word the second time from the cache


def test_a_mask_of_zeros_and_ones_works_like_a_boolean_one() -> None:
    docs = [["common", f"t{i % 7}"] for i in range(500)]
    index = build(docs)
    mask = (np.arange(500) % 3 == 0)
    with patch.object(keyword, "_PRUNE_MIN_POSTINGS", 0):
        assert index.search(["common", "t3"], 5, mask.astype(np.int8)) == index.search(["common", "t3"], 5, mask)
