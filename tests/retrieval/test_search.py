from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from citekb.ingest.chunking import chunk
from citekb.ingest.config import ChunkingConfig
from citekb.ingest.errors import ConfigError
from citekb.ingest.extract.base import DocumentBuilder
from citekb.retrieval.analyze import analyze
from citekb.retrieval.config import RetrievalConfig
from citekb.retrieval.search import HybridSearcher
from citekb.retrieval.store import Snapshot

from fakes import HashEmbedder, ReversingReranker
from tiny_index import build_snapshot

MakeSnapshot = Callable[..., Snapshot]


def test_finds_the_chunk_that_answers(make_snapshot: MakeSnapshot) -> None:
    snapshot = make_snapshot()
    hits = HybridSearcher(HashEmbedder(), RetrievalConfig()).search(snapshot, "How often do I replace the intake filter?", k=3)
    top = hits[0]
    assert "Replace the intake filter every 45 days" in top.chunk.text
    assert top.chunk.locator.source == "field_guide.pdf" and top.chunk.locator.page == 2
    assert top.chunk.locator.section[-1] == "2. Maintenance"
    assert {"bm25", "dense"} <= set(top.scores)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(hits) <= 3 and len({h.chunk.chunk_id for h in hits}) == len(hits)


@pytest.mark.parametrize("fusion", ["score", "rrf"])
def test_both_fusions_find_the_markdown_answer(make_snapshot: MakeSnapshot, fusion: str) -> None:
    searcher = HybridSearcher(HashEmbedder(), RetrievalConfig(fusion=fusion))
    top = searcher.search(make_snapshot(), "security desk extension number", k=1)
    assert len(top) == 1
    assert top[0].chunk.locator.section == ("Security Policy", "Incidents")
    assert (top[0].chunk.locator.line_start, top[0].chunk.locator.line_end) == (17, 19)


def test_mask_restricts_every_leg(make_snapshot: MakeSnapshot, tiny_documents: list) -> None:
    snapshot = make_snapshot()
    docx_id = tiny_documents[1][0].doc_id
    mask = np.array([c.locator.doc_id == docx_id for c in snapshot.chunks])
    hits = HybridSearcher(HashEmbedder(), RetrievalConfig()).search(snapshot, "replace the intake filter", k=10, mask=mask)
    # Only the DOCX's chunks, and all of them: the dense leg scores every allowed row.
    assert {h.chunk.chunk_id for h in hits} == {c.chunk_id for c in tiny_documents[1][1]}
    none = np.zeros(len(snapshot.chunks), dtype=bool)
    assert HybridSearcher(HashEmbedder(), RetrievalConfig()).search(snapshot, "filter", k=10, mask=none) == []


def chinese_snapshot(embedder: HashEmbedder) -> Snapshot:
    b = DocumentBuilder(doc_id="zh00000000000001", source="手册.docx")
    paragraphs = {
        "请假": "员工请假需要提前三天在系统中提交申请，病假需要提供医院证明。",
        "年假": "员工每年享有十五天带薪年假，未休完的年假可以顺延到下一年。",
        "报销": "差旅报销需要在出差结束后十天内提交发票和行程单。",
        "设备": "笔记本电脑必须开启全盘加密，丢失后需要立即报告。",
    }
    for heading, text in paragraphs.items():
        b.add(heading, kind="heading", page=1, section=("员工手册", heading))
        b.add(text, page=1, section=("员工手册", heading))
    document = b.build(pages=1, fallback_title="手册")
    return build_snapshot([(document, chunk(document, ChunkingConfig()))], embedder)


def test_dense_leg_is_dropped_for_a_language_the_embedder_lacks() -> None:
    english_only = HashEmbedder(languages=("en",))
    snapshot = chinese_snapshot(english_only)
    query = "请假需要提前几天申请年假？"
    searcher = HybridSearcher(english_only, RetrievalConfig())
    assert searcher.leg_weights(query) == {"bm25": 1.0, "dense": 0.0}
    hits = searcher.search(snapshot, query, k=10)
    bm25_only = snapshot.keyword.search(analyze(query), 10)
    assert len(bm25_only) >= 2
    assert [snapshot.chunks.index(h.chunk) for h in hits] == [row for row, _ in bm25_only]
    assert all("dense" not in h.scores for h in hits)
    assert hits[0].chunk.locator.section == ("员工手册", "请假")


def test_dense_leg_is_used_for_a_language_the_embedder_knows() -> None:
    bilingual = HashEmbedder(languages=("en", "zh"))
    searcher = HybridSearcher(bilingual, RetrievalConfig())
    assert searcher.leg_weights("请假需要提前几天？") == {"bm25": 1.0, "dense": 1.0}
    hits = searcher.search(chinese_snapshot(bilingual), "请假需要提前几天？", k=4)
    assert all("dense" in h.scores for h in hits)
    assert hits[0].chunk.locator.section == ("员工手册", "请假")


def test_a_dense_only_setup_falls_back_to_keywords_for_other_languages() -> None:
    searcher = HybridSearcher(HashEmbedder(languages=("en",)), RetrievalConfig(weights={"bm25": 0.0, "dense": 1.0}))
    assert searcher.leg_weights("年假有多少天？") == {"bm25": 1.0, "dense": 0.0}
    assert searcher.leg_weights("annual leave") == {"bm25": 0.0, "dense": 1.0}


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_raises_config_error(make_snapshot: MakeSnapshot, query: str) -> None:
    with pytest.raises(ConfigError, match="the query is empty"):
        HybridSearcher(HashEmbedder(), RetrievalConfig()).search(make_snapshot(), query)


def test_k_below_one_raises_config_error(make_snapshot: MakeSnapshot) -> None:
    with pytest.raises(ConfigError, match="k must be at least 1"):
        HybridSearcher(HashEmbedder(), RetrievalConfig()).search(make_snapshot(), "filter", k=0)


def test_reranker_gets_the_fused_top_n_and_decides_the_order(make_snapshot: MakeSnapshot) -> None:
    snapshot = make_snapshot()
    cfg = RetrievalConfig()
    plain = HybridSearcher(HashEmbedder(), cfg).search(snapshot, "pump filter warranty", k=len(snapshot.chunks))
    reranker = ReversingReranker()
    cfg = replace(cfg, rerank=replace(cfg.rerank, top_n=4))
    hits = HybridSearcher(HashEmbedder(), cfg, reranker).search(snapshot, "pump filter warranty", k=2)
    assert reranker.seen == [[h.chunk.chunk_id for h in plain[:4]]]
    assert [h.chunk.chunk_id for h in hits] == [plain[3].chunk.chunk_id, plain[2].chunk.chunk_id]
    assert hits[0].scores["rerank"] == 3.0
    assert {name: v for name, v in hits[0].scores.items() if name != "rerank"} == plain[3].scores  # earlier scores kept
    # A top-N below k: the reranker orders the first N only, the rest follow in fused order.
    reranker = ReversingReranker()
    cfg = replace(cfg, rerank=replace(cfg.rerank, top_n=2))
    hits = HybridSearcher(HashEmbedder(), cfg, reranker).search(snapshot, "pump filter warranty", k=4)
    assert reranker.seen == [[h.chunk.chunk_id for h in plain[:2]]]
    assert [h.chunk.chunk_id for h in hits] == [plain[i].chunk.chunk_id for i in (1, 0, 2, 3)]
    assert "rerank" not in hits[2].scores and hits[2].score == plain[2].score


def test_invalid_retrieval_config_raises_config_error() -> None:
    for kwargs in ({"weights": {"bm25": 0.0, "dense": 0.0}}, {"weights": {"sparse": 1.0}}, {"candidates": 0},
                   {"fusion": "max"}):
        with pytest.raises(ConfigError):
            RetrievalConfig(**kwargs)  # type: ignore[arg-type]


def test_a_chunk_of_many_sentences_owns_at_most_the_cap_of_dense_vectors() -> None:
    from citekb.ingest.document import Chunk, Locator, Span
    from citekb.retrieval.indexing import MAX_UNITS_PER_CHUNK, dense_units

    text = " ".join(f"Sentence number {i} ends here." for i in range(30))
    chunk = Chunk("d:0", text, Locator(doc_id="d", source="d.md", title="D"), (Span(0, len(text), None, 1, 1),))
    units = dense_units(chunk)
    assert len(units) == MAX_UNITS_PER_CHUNK
    assert " ".join(units) == text  # every sentence kept, in order


def two_section_snapshot(embedder: HashEmbedder) -> Snapshot:
    """The same query words in both sections: scattered over four sentences in one, together in
    one sentence of the other."""
    b = DocumentBuilder(doc_id="en00000000000002", source="plant.md")
    sections = {
        "Scattered": "The pump hums in the basement. A filter sits on the shelf. Staff replace the lamps. "
                     "Every week the hall is swept.",
        "Together": "Replace the pump filter every week. Lunch is served at noon. The car park closes at night. "
                    "Visitors sign in at the desk.",
        # Unrelated sections, so that the query words are rare enough for BM25 to weigh them.
        "Parking": "The car park opens at seven. Bicycles go in the shed.",
        "Visitors": "Visitors wear a badge. Badges are returned at the gate.",
        "Meals": "The canteen serves soup on Fridays. Coffee is free.",
    }
    for heading, text in sections.items():
        b.add(heading, kind="heading", section=("Plant", heading))
        b.add(text, section=("Plant", heading))
    document = b.build(pages=None, fallback_title="Plant")
    return build_snapshot([(document, chunk(document, ChunkingConfig()))], embedder)


def test_a_chunk_is_scored_by_its_best_sentence() -> None:
    snapshot = two_section_snapshot(HashEmbedder())
    searcher = HybridSearcher(HashEmbedder(), RetrievalConfig())
    sections = {c.locator.section[-1]: row for row, c in enumerate(snapshot.chunks)}
    assert {"Scattered", "Together"} <= set(sections)
    ranked = searcher.best_sentences(snapshot, list(range(len(snapshot.chunks))), analyze("How often do I replace the pump filter?"))
    assert ranked[0][0] == sections["Together"]
    assert ranked[0][1] > dict(ranked).get(sections["Scattered"], 0.0)


def test_sentence_share_splits_the_keyword_leg() -> None:
    snapshot = two_section_snapshot(HashEmbedder())
    query = "How often do I replace the pump filter?"
    only_sentences = RetrievalConfig(weights={"bm25": 1.0, "dense": 0.0}, sentence_share=1.0)
    hits = HybridSearcher(HashEmbedder(), only_sentences).search(snapshot, query, k=2)
    assert hits[0].chunk.locator.section[-1] == "Together"
    assert set(hits[0].scores) == {"fused", "bm25"}  # bm25 stays the whole chunk's score
    whole = HybridSearcher(HashEmbedder(), RetrievalConfig(weights={"bm25": 1.0, "dense": 0.0}, sentence_share=0.0))
    assert [h.chunk for h in whole.search(snapshot, query, k=2)] == [snapshot.chunks[row] for row, _ in
                                                                   snapshot.keyword.search(analyze(query), 2)]
    with pytest.raises(ConfigError, match="sentence_share"):
        RetrievalConfig(sentence_share=1.5)


def test_only_each_legs_best_sentence_rows_get_a_sentence_score(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = two_section_snapshot(HashEmbedder())
    query = "Replace the pump filter; visitors sign in at the desk?"
    seen: list[list[int]] = []
    original = HybridSearcher.best_sentences

    def spy(self: HybridSearcher, snap: Snapshot, rows: list[int], terms: list[str]) -> list[tuple[int, float]]:
        seen.append(list(rows))
        return original(self, snap, rows, terms)

    monkeypatch.setattr(HybridSearcher, "best_sentences", spy)
    cfg = RetrievalConfig(weights={"bm25": 1.0, "dense": 1.0}, sentence_rows=1)
    searcher = HybridSearcher(HashEmbedder(), cfg)
    searcher.search(snapshot, query, k=3)
    keyword_top = snapshot.keyword.search(analyze(query), 1)[0][0]
    dense_top = snapshot.dense.search(searcher.embedder.embed([query])[0], 1)[0][0]
    assert seen == [list(dict.fromkeys([keyword_top, dense_top]))]  # each leg's first row, no more
    seen.clear()
    HybridSearcher(HashEmbedder(), replace(cfg, sentence_rows=100)).search(snapshot, query, k=3)
    assert len(seen[0]) > 2
    with pytest.raises(ConfigError, match="sentence_rows"):
        RetrievalConfig(sentence_rows=0)
