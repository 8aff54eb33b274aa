from __future__ import annotations

from pathlib import Path

import pytest
from citekb.ingest.document import Chunk, Locator
from citekb.ingest.errors import ModelError
from citekb.retrieval.config import RerankConfig
from citekb.retrieval.factory import make_reranker
from citekb.retrieval.hit import Hit
from citekb.retrieval.rerank import CrossEncoderReranker

PASSAGES = [
    "annual leave is paid for days",
    "replace the pump filter",
    "the warranty is months",
    "hotel policy for travel",
    "laptop security password",
]


def hits() -> list[Hit]:
    out = []
    for i, text in enumerate(PASSAGES):
        chunk = Chunk(chunk_id=f"d:{i}", text=text, locator=Locator(doc_id="d", source="d.md", title="D"))
        out.append(Hit(chunk=chunk, score=1.0 / (i + 1), scores={"bm25": float(10 - i), "rrf": 1.0 / (i + 1)}))
    return out


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(tiny_cross_encoder, batch_size=2)  # batches of 2 over 5 pairs


def test_returns_at_most_k_hits_sorted_by_rerank_score(reranker: CrossEncoderReranker) -> None:
    reranked = reranker.rerank("how many days of annual leave", hits(), k=3)
    assert len(reranked) == 3
    assert [h.score for h in reranked] == [h.scores["rerank"] for h in reranked]
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)


def test_keeps_earlier_scores_and_scores_every_candidate(reranker: CrossEncoderReranker) -> None:
    original = {h.chunk.chunk_id: h for h in hits()}
    everything = reranker.rerank("pump filter", hits(), k=10)
    assert sorted(h.chunk.chunk_id for h in everything) == sorted(original)
    for hit in everything:
        before = original[hit.chunk.chunk_id]
        assert hit.chunk == before.chunk
        assert {name: v for name, v in hit.scores.items() if name != "rerank"} == before.scores
    # The top k are the k best of the full ranking, and scores do not depend on the batch.
    top2 = reranker.rerank("pump filter", hits(), k=2)
    assert [(h.chunk.chunk_id, h.score) for h in top2] == [
        (h.chunk.chunk_id, pytest.approx(h.score, abs=1e-5)) for h in everything[:2]
    ]


def test_scores_come_from_the_model(reranker: CrossEncoderReranker) -> None:
    # A random model still reads its input: different queries give different scores.
    a = {h.chunk.chunk_id: h.score for h in reranker.rerank("annual leave", hits(), k=5)}
    b = {h.chunk.chunk_id: h.score for h in reranker.rerank("laptop password security", hits(), k=5)}
    assert a != b
    assert len(set(a.values())) == len(PASSAGES)  # passages are told apart too


def test_no_hits_no_work(reranker: CrossEncoderReranker) -> None:
    assert reranker.rerank("anything", [], k=5) == []


def test_missing_model_dir_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no reranker model in .*absent"):
        CrossEncoderReranker(tmp_path / "absent")


def test_damaged_model_dir_raises_model_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json", "utf-8")
    with pytest.raises(ModelError, match="cannot load reranker model"):
        CrossEncoderReranker(tmp_path)


def test_factory_builds_the_cross_encoder_from_config(tiny_cross_encoder: Path) -> None:
    assert make_reranker(RerankConfig()) is None
    reranker = make_reranker(RerankConfig(backend="cross-encoder", model_dir=tiny_cross_encoder))
    assert isinstance(reranker, CrossEncoderReranker)
    with pytest.raises(ModelError, match="needs a model directory"):
        make_reranker(RerankConfig(backend="cross-encoder"))


def test_a_trained_model_reads_the_query_window_of_each_chunk(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    import shutil

    from citekb.retrieval.rerank import TRAINING_FILE

    model = tmp_path / "model"
    shutil.copytree(tiny_cross_encoder, model)
    assert CrossEncoderReranker(model).passages("pump", [hits()[1].chunk]) == ["replace the pump filter"]
    long_text = "Leave rules are long. " * 30 + "Replace the pump filter monthly. " + "More words follow here. " * 30
    chunk = Chunk(chunk_id="d:9", text=long_text, locator=Locator(doc_id="d", source="d.md", title="D"))
    (model / TRAINING_FILE).write_text('{"passage_tokens": 12}', "utf-8")
    reranker = CrossEncoderReranker(model)
    [window] = reranker.passages("pump filter", [chunk])
    assert "Replace the pump filter monthly." in window and len(window) < 100
    (model / TRAINING_FILE).write_text("{damaged", "utf-8")
    with pytest.raises(ModelError, match="is damaged"):
        CrossEncoderReranker(model)


def test_mixed_keeps_the_fused_order_unless_the_reranker_clearly_disagrees() -> None:
    from citekb.retrieval.rerank import mixed

    fused = [1.0, 0.95, 0.5]
    # The reranker prefers the second hit: a small weight leaves the clear fused lead of hit 1 over
    # hit 3 alone but lets the reranker settle the near-tie between hits 1 and 2.
    scores = mixed(fused, [0.0, 2.0, 1.0], weight=0.1)
    assert scores == pytest.approx([1.0, 0.95 + 0.1, 0.5 + 0.05])
    assert max(range(3), key=scores.__getitem__) == 1
    assert mixed(fused, [3.0, 3.0, 3.0], weight=0.1) == pytest.approx([1.0, 0.95, 0.5])  # no spread: no say
    assert mixed([0.0, 0.0], [1.0, 0.0], weight=0.5) == pytest.approx([0.5, 0.0])


def test_mix_blends_model_scores_with_the_fused_scores(tiny_cross_encoder: Path) -> None:
    from citekb.retrieval.rerank import mixed

    plain = CrossEncoderReranker(tiny_cross_encoder)
    blended = CrossEncoderReranker(tiny_cross_encoder, mix=0.2)
    query = "how many days of annual leave"
    raw = {h.chunk.chunk_id: h.scores["rerank"] for h in plain.rerank(query, hits(), k=5)}
    out = blended.rerank(query, hits(), k=5)
    expected = mixed([h.score for h in hits()], [raw[h.chunk.chunk_id] for h in hits()], 0.2)
    assert [h.score for h in out] == sorted(expected, reverse=True)
    assert {h.chunk.chunk_id: h.scores["rerank"] for h in out} == pytest.approx(raw)
    with pytest.raises(Exception, match="mix must be at least 0"):
        RerankConfig(mix=-1.0)
    assert make_reranker(RerankConfig(backend="cross-encoder", model_dir=tiny_cross_encoder, mix=0.3)).mix == 0.3


def test_bfloat16_scores_order_hits_as_float32_does(tiny_cross_encoder: Path) -> None:
    query = "how many days of annual leave"
    exact = CrossEncoderReranker(tiny_cross_encoder, precision="float32").rerank(query, hits(), k=5)
    fast = CrossEncoderReranker(tiny_cross_encoder, precision="bfloat16").rerank(query, hits(), k=5)
    assert [h.scores["rerank"] for h in fast] == pytest.approx([h.scores["rerank"] for h in exact], abs=0.05)
    assert all(isinstance(h.scores["rerank"], float) for h in fast)
    assert RerankConfig().precision == "auto"
