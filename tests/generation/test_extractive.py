from __future__ import annotations

import re

import pytest

from citekb.generation.answer import Answer
from citekb.generation.base import NOT_FOUND
from citekb.generation.config import ExtractiveConfig
from citekb.generation.extractive import ExtractiveGenerator, rank_sentences
from citekb.ingest.document import BBox, Chunk, Locator, Span
from citekb.ingest.errors import ConfigError
from citekb.retrieval.hit import Hit

from fakes import HashEmbedder

PORTAL = "Annual leave requests go through the HR portal."
APPROVAL = "Approval takes two days."
ENTITLEMENT = "Full-time employees receive 27 days of paid annual leave per year."
EXPIRY = "Unused days expire in June."
QUESTION = "How many days of paid annual leave do full-time employees receive per year?"


def two_page_chunk(chunk_id: str = "hb:4") -> Chunk:
    """One chunk of two blocks: the first printed on page 3, the second on page 4."""
    first, second = f"{PORTAL} {APPROVAL}", f"{ENTITLEMENT} {EXPIRY}"
    text = f"{first}\n\n{second}"
    locator = Locator(
        doc_id="hb", source="handbook.pdf", title="Handbook", page=3, page_end=4, section=("Handbook", "Leave"),
        char_start=100, char_end=100 + len(text),
        bboxes=(BBox(3, 50, 700, 500, 760), BBox(4, 50, 60, 500, 90)),
    )
    spans = (Span(0, len(first), 3, None, None), Span(len(first) + 2, len(text), 4, None, None))
    return Chunk(chunk_id=chunk_id, text=text, locator=locator, spans=spans)


def markdown_chunk() -> Chunk:
    heading, rule = "Passwords", "Passwords must have at least sixteen characters."
    text = f"{heading}\n\n{rule}"
    locator = Locator(doc_id="md", source="security.md", title="Security", section=("Security", "Passwords"),
                      line_start=10, line_end=14)
    spans = (Span(0, len(heading), None, 10, 10), Span(len(heading) + 2, len(text), None, 12, 14))
    return Chunk(chunk_id="md:1", text=text, locator=locator, spans=spans)


def hit(c: Chunk, score: float = 1.0) -> Hit:
    return Hit(chunk=c, score=score, scores={"rrf": score})


def assert_markers_match_citations(answer: Answer) -> None:
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    assert markers == [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for citation in answer.citations:
        assert f"{citation.quote} [{citation.n}]" in answer.text


def test_picks_the_answering_sentence_and_cites_its_own_page() -> None:
    answer = ExtractiveGenerator(ExtractiveConfig(max_sentences=1)).answer(QUESTION, [hit(two_page_chunk())])
    assert answer.grounded
    assert answer.text == f"{ENTITLEMENT} [1]"
    [citation] = answer.citations
    assert (citation.n, citation.chunk_id, citation.quote) == (1, "hb:4", ENTITLEMENT)
    # The chunk covers pages 3-4; the quoted sentence is printed on page 4.
    assert (citation.locator.page, citation.locator.page_end) == (4, 4)
    assert citation.locator.bboxes == (BBox(4, 50, 60, 500, 90),)
    assert citation.locator.section_path == "Handbook > Leave"
    assert citation.locator.source == "handbook.pdf"


def test_a_sentence_on_the_first_page_cites_the_first_page() -> None:
    answer = ExtractiveGenerator(ExtractiveConfig(max_sentences=1)).answer(
        "Where do annual leave requests go? Through which HR portal?", [hit(two_page_chunk())]
    )
    assert [(c.quote, c.locator.page, c.locator.page_end) for c in answer.citations] == [(PORTAL, 3, 3)]


def test_every_marker_has_a_citation_with_default_settings() -> None:
    other = Chunk(chunk_id="hb:9", text="Parental leave is 26 weeks at full pay.", locator=Locator(
        doc_id="hb", source="handbook.pdf", title="Handbook", page=7, page_end=7), spans=(Span(0, 39, 7, None, None),))
    answer = ExtractiveGenerator().answer(QUESTION, [hit(two_page_chunk()), hit(other, 0.5)])
    assert answer.grounded
    assert answer.citations[0].quote == ENTITLEMENT and answer.citations[0].locator.page == 4
    assert_markers_match_citations(answer)
    assert answer.hits == (hit(two_page_chunk()), hit(other, 0.5))


def test_markdown_citation_narrows_to_the_sentences_lines() -> None:
    answer = ExtractiveGenerator().answer("How many characters must passwords have?", [hit(markdown_chunk())])
    assert [(c.quote, c.locator.line_start, c.locator.line_end, c.locator.page) for c in answer.citations] == [
        ("Passwords must have at least sixteen characters.", 12, 14, None)
    ]
    assert_markers_match_citations(answer)


def test_chinese_question_cites_the_chinese_sentence() -> None:
    first, second = "员工每年享有十五天带薪年假。", "病假需要提供医院证明。"
    text = f"{first}\n\n{second}"
    c = Chunk(chunk_id="zh:0", text=text, locator=Locator(doc_id="zh", source="手册.pdf", title="手册", page=1, page_end=2),
              spans=(Span(0, len(first), 1, None, None), Span(len(first) + 2, len(text), 2, None, None)))
    answer = ExtractiveGenerator(ExtractiveConfig(max_sentences=1)).answer("病假需要什么证明？", [hit(c)])
    assert answer.text == f"{second} [1]"
    assert [(x.quote, x.locator.page) for x in answer.citations] == [(second, 2)]


@pytest.mark.parametrize("question", ["What is the capital of Mongolia?", "What is it?", ""])
def test_nothing_matches_not_grounded_without_citations(question: str) -> None:
    answer = ExtractiveGenerator().answer(question, [hit(two_page_chunk())])
    assert answer == Answer(text=NOT_FOUND, citations=(), hits=(hit(two_page_chunk()),), grounded=False)


def test_no_hits_is_not_grounded() -> None:
    answer = ExtractiveGenerator().answer(QUESTION, [])
    assert (answer.text, answer.citations, answer.grounded) == (NOT_FOUND, (), False)


def test_only_the_top_chunks_are_read() -> None:
    noise = Chunk(chunk_id="x:0", text="The cafeteria opens at eight.", locator=Locator(doc_id="x", source="x.md", title="X"),
                  spans=(Span(0, 29, None, 1, 1),))
    hits = [hit(noise), hit(two_page_chunk(), 0.5)]
    assert not ExtractiveGenerator(ExtractiveConfig(top_chunks=1)).answer(QUESTION, hits).grounded
    assert ExtractiveGenerator(ExtractiveConfig(top_chunks=2)).answer(QUESTION, hits).citations[0].chunk_id == "hb:4"


def test_with_an_embedder_the_answer_is_the_same_sentence() -> None:
    embedder = HashEmbedder()
    answer = ExtractiveGenerator(ExtractiveConfig(max_sentences=1), embedder).answer(QUESTION, [hit(two_page_chunk())])
    assert embedder.calls == 1
    assert [(c.quote, c.locator.page) for c in answer.citations] == [(ENTITLEMENT, 4)]


def test_the_embedder_is_not_asked_about_a_language_it_lacks() -> None:
    english_only = HashEmbedder(languages=("en",))
    first = "员工每年享有十五天带薪年假。"
    c = Chunk(chunk_id="zh:0", text=first, locator=Locator(doc_id="zh", source="z.md", title="Z"),
              spans=(Span(0, len(first), None, 3, 3),))
    answer = ExtractiveGenerator(embedder=english_only).answer("每年有多少天年假？", [hit(c)])
    assert english_only.calls == 0
    assert [(x.quote, x.locator.line_start) for x in answer.citations] == [(first, 3)]


@pytest.mark.parametrize(
    "kwargs",
    [{"top_chunks": 0}, {"max_sentences": 0}, {"keep_ratio": 0.0}, {"keep_ratio": 1.5}, {"min_support": 1.0}],
)
def test_invalid_extractive_config_raises_config_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        ExtractiveConfig(**kwargs)  # type: ignore[arg-type]


def test_a_heading_is_never_quoted_as_an_answer() -> None:
    heading, rule = "Warranty", "The warranty lasts 24 months from delivery."
    text = f"{heading}\n\n{rule}"
    locator = Locator(doc_id="pm", source="manual.pdf", title="Manual", page=2, page_end=2, section=("Manual", "Warranty"))
    spans = (Span(0, len(heading), 2, None, None, "heading"), Span(len(heading) + 2, len(text), 2, None, None))
    chunk = Chunk(chunk_id="pm:3", text=text, locator=locator, spans=spans)
    answer = ExtractiveGenerator(ExtractiveConfig(max_sentences=2, keep_ratio=0.01)).answer("How long is the warranty?", [hit(chunk)])
    assert [c.quote for c in answer.citations] == [rule]


class _FixedSimilarity:
    """An embedder whose every sentence has the same cosine to every question."""

    model_id, dim, languages = "test/fixed", 2, ("en",)

    def __init__(self, cosine: float) -> None:
        self.cosine = cosine

    def embed(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
        import numpy as np

        other = np.array([self.cosine, (1 - self.cosine**2) ** 0.5], np.float32)
        return np.array([[1.0, 0.0]] + [other] * (len(texts) - 1), np.float32)


@pytest.mark.parametrize(("cosine", "grounded"), [(0.1, False), (0.3, True)])
def test_shared_terms_answer_only_when_the_embedder_finds_the_sentence_related(cosine: float, grounded: bool) -> None:
    generator = ExtractiveGenerator(ExtractiveConfig(min_related=0.25, min_similarity=0.5), _FixedSimilarity(cosine))
    answer = generator.answer(QUESTION, [hit(two_page_chunk())])
    assert answer.grounded is grounded
    assert (answer.text == NOT_FOUND) is not grounded


def test_a_close_paraphrase_answers_without_shared_terms() -> None:
    generator = ExtractiveGenerator(ExtractiveConfig(min_similarity=0.5), _FixedSimilarity(0.9))
    answer = generator.answer("Zebra quokka?", [hit(two_page_chunk())])
    assert answer.grounded and len(answer.citations) >= 1


# --------------------------------------------------------------------------- the sentence chooser

def _plain(chunk_id: str, text: str, page: int) -> Chunk:
    return Chunk(chunk_id=chunk_id, text=text, locator=Locator(doc_id=chunk_id, source=f"{chunk_id}.pdf", title=chunk_id,
                                                               page=page, page_end=page), spans=(Span(0, len(text), page, None, None),))


def test_the_chooser_weighs_the_retrieval_score_of_a_sentences_hit() -> None:
    """The second hit's sentence holds one more of the question's terms; retrieval scored its
    hit far below the first, and that decides, unless the hit features are weighed 0."""
    question = "Which office approves travel requests abroad?"
    first = _plain("a", "The finance office approves travel requests.", 1)
    second = _plain("b", "The travel office approves travel requests abroad.", 2)
    assert rank_sentences(question, [first, second], hit_scores=[1.0, 0.2])[0].sentence.chunk is first
    assert rank_sentences(question, [first, second], hit_scores=[1.0, 1.0])[0].sentence.chunk is second
    blind = ExtractiveConfig(hit_score_weight=0.0, rank_weight=0.0)
    assert rank_sentences(question, [first, second], cfg=blind, hit_scores=[1.0, 0.2])[0].sentence.chunk is second
    answer = ExtractiveGenerator(ExtractiveConfig(min_confidence=0.0)).answer(question, [hit(first, 1.0), hit(second, 0.2)])
    assert [c.chunk_id for c in answer.citations] == ["a"]


def test_the_chooser_prefers_the_sentence_holding_the_asked_for_type() -> None:
    question = "How many days of paid annual leave do employees get?"
    vague = "Employees get paid annual leave days as the contract sets out."
    counted = "Employees get 27 paid annual leave days under the contract."
    chunk = _plain("hb", f"{vague} {counted}", 3)
    assert rank_sentences(question, [chunk])[0].sentence.text == counted
    # Without the answer-type feature the two tie, and the first in the document wins.
    untyped = ExtractiveConfig(answer_type_weight=0.0)
    assert rank_sentences(question, [chunk], cfg=untyped)[0].sentence.text == vague


def test_confidences_are_a_softmax_and_min_confidence_abstains() -> None:
    question = "Which office approves travel requests?"
    a = _plain("a", "The finance office approves travel requests.", 1)
    b = _plain("b", "The travel office approves travel requests.", 2)
    embedder = HashEmbedder()
    ranked = rank_sentences(question, [a, b], embedder, hit_scores=[1.0, 0.95])
    assert sum(r.confidence for r in ranked) == pytest.approx(1.0)
    assert ranked[0].confidence < 0.9
    hits = [hit(a, 1.0), hit(b, 0.95)]
    assert ExtractiveGenerator(ExtractiveConfig(min_confidence=0.0), embedder).answer(question, hits).grounded
    unsure = ExtractiveGenerator(ExtractiveConfig(min_confidence=0.9), embedder).answer(question, hits)
    assert not unsure.grounded and unsure.text == NOT_FOUND and unsure.citations == ()
    # The confidence is fitted with the embedder's cosines: without them (no embedder, or a
    # question in a language it does not read) terms alone decide.
    assert ExtractiveGenerator(ExtractiveConfig(min_confidence=0.9)).answer(question, hits).grounded
    english_only = HashEmbedder(languages=("en",))
    zh_question = "哪个办公室批准差旅申请？"
    zh_hits = [hit(_plain("c", "财务办公室批准差旅申请。", 1), 1.0), hit(_plain("d", "差旅办公室批准差旅申请。", 2), 0.95)]
    assert rank_sentences(zh_question, [h.chunk for h in zh_hits], english_only)[0].confidence < 0.9
    assert ExtractiveGenerator(ExtractiveConfig(min_confidence=0.9), english_only).answer(zh_question, zh_hits).grounded
    assert not ExtractiveGenerator(ExtractiveConfig(min_confidence=0.9), HashEmbedder()).answer(zh_question, zh_hits).grounded
    with pytest.raises(ConfigError, match="min_confidence"):
        ExtractiveConfig(min_confidence=1.0)


def test_settings_carry_min_confidence_and_the_span_choice(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from citekb.api.settings import Settings

    monkeypatch.setenv("CITEKB_ANSWER_MIN_CONFIDENCE", "0")
    monkeypatch.setenv("CITEKB_TINYLLM_ANSWER_SPANS", "model")
    cfg = Settings(index=tmp_path / "idx").generation_config()
    assert cfg.extractive.min_confidence == 0.0 and cfg.tinyllm.answer_spans == "model"
    assert Settings(index=tmp_path / "idx", answer_min_confidence=0.4).generation_config().extractive.min_confidence == 0.4
    monkeypatch.setenv("CITEKB_ANSWER_MIN_CONFIDENCE", "1.5")
    with pytest.raises(ValueError, match="answer_min_confidence"):
        Settings(index=tmp_path / "idx")
