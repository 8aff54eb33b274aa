"""Citation verification: each answer sentence against the passages it cites."""

from __future__ import annotations

import pytest

from citekb.generation.answer import Answer, Citation
from citekb.generation.base import NOT_FOUND
from citekb.generation.config import ExtractiveConfig, VerifyConfig
from citekb.generation.extractive import ExtractiveGenerator
from citekb.generation.verify import answer_sentences, marker_numbers, verify
from citekb.ingest.document import Chunk, Locator, Span
from citekb.ingest.errors import ConfigError
from citekb.retrieval.hit import Hit

from fakes import HashEmbedder
from sample_hits import ENTITLEMENT, EXPIRY, HITS, LAPTOP, PASSWORD, handbook, security, whole



def model_answer(text: str, *citations: Citation) -> Answer:
    return Answer(text=text, citations=citations, hits=HITS, grounded=True)


@pytest.fixture(params=["lexical", "embedder"])
def embedder(request: pytest.FixtureRequest) -> HashEmbedder | None:
    return HashEmbedder() if request.param == "embedder" else None


def test_sentences_keep_their_markers_and_split_after_them() -> None:
    for text, expected in [
        ("S one. [1] S two. [2]", ["S one. [1]", "S two. [2]"]),
        ("Alpha is one [1]. Beta is two [2][3].", ["Alpha is one [1].", "Beta is two [2][3]."]),
        ("A holds [1] B holds [2]", ["A holds [1]", "B holds [2]"]),
        ("甲是一[1]。乙是二。[2]", ["甲是一[1]。", "乙是二。[2]"]),
    ]:
        assert [text[a:b] for a, b in answer_sentences(text)] == expected
    assert marker_numbers("x [1, 3] y [2][10]") == [1, 3, 2, 10]


def test_an_extractive_answer_is_supported_and_unchanged(embedder: HashEmbedder | None) -> None:
    question = "How many days of paid annual leave do full-time employees receive per year?"
    answer = ExtractiveGenerator(ExtractiveConfig(), embedder).answer(question, list(HITS))
    verified = verify(answer, embedder)
    assert verified.text == answer.text == f"{ENTITLEMENT} [1]"
    assert verified.citations == answer.citations
    [sentence] = verified.sentences
    assert (sentence.start, sentence.end, sentence.citations, sentence.supported) == (0, len(answer.text), (1,), True)
    assert sentence.score > 0.9


def test_a_whole_passage_citation_is_narrowed_to_the_supporting_sentence(embedder: HashEmbedder | None) -> None:
    answer = model_answer("Full-time staff receive 27 days of paid annual leave each year [1].", whole(1, handbook()))
    verified = verify(answer, embedder)
    assert [s.supported for s in verified.sentences] == [True]
    [citation] = verified.citations
    assert citation.quote == ENTITLEMENT
    assert (citation.locator.page, citation.locator.page_end) == (4, 4)


def test_a_citation_to_a_passage_that_does_not_say_it_is_flagged(embedder: HashEmbedder | None) -> None:
    text = f"Full-time employees receive 27 days of paid annual leave per year [2]. {PASSWORD[:-1]} [1]."
    answer = model_answer(text, whole(1, handbook()), whole(2, security()))
    verified = verify(answer, embedder)
    # Flag mode keeps every sentence and citation, renumbered in the order they appear.
    assert verified.text == text.replace("[2]", "[x]").replace("[1]", "[2]").replace("[x]", "[1]")
    assert [(s.citations, s.supported) for s in verified.sentences] == [((1,), False), ((2,), False)]
    assert [(c.n, c.chunk_id, c.quote) for c in verified.citations] == [
        (1, "sec:1", security().text), (2, "hb:4", handbook().text)]  # unsupported: not narrowed


def test_drop_removes_wrong_citations_and_renumbers(embedder: HashEmbedder | None) -> None:
    text = (f"Requests go through the HR portal [1]. Full-time employees receive 27 days of paid annual leave "
            f"per year [1][2]. {PASSWORD[:-1]} [2].")
    answer = model_answer(text, whole(1, security()), whole(2, handbook()))
    verified = verify(answer, embedder, VerifyConfig(mode="drop"))
    # The first sentence cites only the wrong passage: gone. The second keeps its right citation,
    # now [1]; the third cites the handbook for a password rule: gone.
    assert verified.text == "Full-time employees receive 27 days of paid annual leave per year [1]."
    assert [(c.n, c.chunk_id, c.quote) for c in verified.citations] == [(1, "hb:4", ENTITLEMENT)]
    assert [(s.start, s.end, s.citations, s.supported) for s in verified.sentences] == [(0, len(verified.text), (1,), True)]


def test_drop_with_nothing_supported_says_not_found(embedder: HashEmbedder | None) -> None:
    answer = model_answer("Laptops are encrypted with a hardware key [1].", whole(1, handbook()))
    verified = verify(answer, embedder, VerifyConfig(mode="drop"))
    assert (verified.text, verified.citations, verified.grounded, verified.sentences) == (NOT_FOUND, (), False, ())


def test_a_sentence_without_citation_or_with_an_unknown_marker_is_unsupported(embedder: HashEmbedder | None) -> None:
    text = f"Here is what the handbook says. Unused days expire in June [1]. {LAPTOP[:-1]} [7]."
    answer = model_answer(text, whole(1, handbook()))
    flagged = verify(answer, embedder)
    # [7] names no citation: it points at nothing, so it leaves the text and its sentence is flagged.
    assert flagged.text == f"Here is what the handbook says. Unused days expire in June [1]. {LAPTOP}"
    assert [(flagged.text[s.start:s.end], s.supported) for s in flagged.sentences] == [
        ("Here is what the handbook says.", False), ("Unused days expire in June [1].", True), (LAPTOP, False)]
    dropped = verify(answer, embedder, VerifyConfig(mode="drop"))
    assert dropped.text == "Unused days expire in June [1]."
    assert dropped.citations[0].quote == EXPIRY


def test_chinese_sentences_are_checked_by_their_terms() -> None:
    rule, other = "主机应距离墙壁至少三十厘米。", "打印机每月清洁一次。"
    text = rule + other
    chunk = Chunk(chunk_id="zh:1", text=text, locator=Locator(doc_id="zh", source="手册.md", title="手册", line_start=1, line_end=1),
                  spans=(Span(0, len(text), None, 1, 1),))
    answer = Answer(text="主机要离墙壁至少三十厘米[1]。打印机每周更换墨盒[1]。", citations=(whole(1, chunk),),
                    hits=(Hit(chunk, 1.0, {}),), grounded=True)
    verified = verify(answer, HashEmbedder(languages=("en",)))
    assert [(verified.text[s.start:s.end], s.supported) for s in verified.sentences] == [
        ("主机要离墙壁至少三十厘米[1]。", True), ("打印机每周更换墨盒[1]。", False)]
    assert verified.citations[0].quote == rule


def test_off_and_ungrounded_answers_are_left_alone() -> None:
    answer = model_answer("Laptops are encrypted [1].", whole(1, handbook()))
    assert verify(answer, None, VerifyConfig(mode="off")) is answer
    not_found = Answer(text=NOT_FOUND, citations=(), hits=HITS, grounded=False)
    assert verify(not_found, None) is not_found


@pytest.mark.parametrize("kwargs", [{"mode": "maybe"}, {"min_overlap": 1.5}, {"min_similarity": -2.0}])
def test_invalid_verify_config_raises_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        VerifyConfig(**kwargs)  # type: ignore[arg-type]


def test_with_the_question_a_supported_sentence_off_the_question_is_flagged(embedder: HashEmbedder | None) -> None:
    answer = model_answer("Full-time staff receive 27 days of paid annual leave each year [1].", whole(1, handbook()))
    cfg = VerifyConfig(min_relevance=0.5, min_relevance_similarity=0.9)
    on_topic = verify(answer, embedder, cfg, question="How many days of annual leave do full-time staff get?")
    off_topic = verify(answer, embedder, cfg, question="Who approves laptop encryption keys?")
    assert [s.supported for s in on_topic.sentences] == [True]
    assert [s.supported for s in off_topic.sentences] == [False]
    assert verify(answer, embedder, VerifyConfig(), question="Who approves laptop encryption keys?").sentences[0].supported
    dropped = verify(answer, embedder, VerifyConfig(mode="drop", min_relevance=0.5, min_relevance_similarity=0.9),
                     question="Who approves laptop encryption keys?")
    assert not dropped.grounded


def test_a_short_verbatim_quote_is_supported_and_narrowed(embedder: HashEmbedder | None) -> None:
    # A copied span shares too little with its sentence for the embedder; the quote itself decides.
    answer = model_answer("27 days [1]. 28 days [1].", whole(1, handbook()))
    verified = verify(answer, embedder)
    assert [(verified.text[s.start:s.end], s.supported) for s in verified.sentences] == [
        ("27 days [1].", True), ("28 days [1].", False)]
    assert verified.citations[0].quote == ENTITLEMENT
