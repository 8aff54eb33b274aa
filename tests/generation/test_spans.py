"""Answer types and answer-shaped candidate spans (generation/spans.py)."""

from __future__ import annotations

import pytest

from citekb.generation.spans import answer_type, candidate_spans, holds_type, scored_candidates
from citekb.retrieval.analyze import analyze

TESLA = "Tesla was born on 10 July 1856 in Smiljan, in the Austrian Empire, to Milutin Tesla, an Orthodox priest."
LEAVE = "Full-time employees receive 27 days of paid annual leave per year, approved by the line manager."


@pytest.mark.parametrize(("question", "kind"), [
    ("How many days of paid leave do employees get?", "number"),
    ("How much did the bridge cost?", "number"),
    ("When was Tesla born?", "date"),
    ("In what year did Tesla die?", "date"),
    ("How long ago did the war end?", "date"),
    ("Who approves travel requests?", "person"),
    ("Where was Tesla born?", "place"),
    ("What is the capital of Serbia?", "other"),
    ("员工每年有多少天年假？", "number"),
    ("谁批准出差？", "person"),
])
def test_answer_type_follows_the_wh_phrase(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_holds_type_needs_a_typed_word_the_question_lacks() -> None:
    assert holds_type(LEAVE, "How many days of paid leave do employees get?")
    assert not holds_type("Employees get paid leave every year.", "How many days of paid leave do employees get?")
    # The question's own year is no answer to it.
    assert not holds_type("In 1856 the town was small.", "What happened in Smiljan in 1856, when was it?")
    assert holds_type(TESLA, "Who was Tesla's father?")
    assert not holds_type(TESLA, "What is the capital of Serbia?")  # "other": any noun phrase could answer


@pytest.mark.parametrize("question", [
    "When was Tesla born in Smiljan?",
    "Who was the father of Tesla?",
    "What empire was Smiljan in when Tesla was born?",
])
def test_candidates_hold_no_word_of_the_question(question: str) -> None:
    spans = candidate_spans(TESLA, question)
    asked = set(analyze(question))
    assert spans
    for span in spans:
        assert TESLA[span.start:span.end] == span.text
        assert not set(analyze(span.text)) & asked, span.text
        assert span.text.strip(" ,.") == span.text


def test_typed_questions_get_candidates_of_their_type_best_first() -> None:
    dates = candidate_spans(TESLA, "When was Tesla born in Smiljan?")
    assert dates[0].text in ("10 July 1856", "July 1856")
    assert all(any(ch.isdigit() for ch in s.text) or "July" in s.text for s in dates)
    counts = candidate_spans(LEAVE, "How many days of paid annual leave do full-time employees receive per year?")
    assert counts and all(any(ch.isdigit() for ch in s.text) for s in counts)
    assert counts[0].text == "27"
    people = candidate_spans("His father was Milutin Tesla, an Orthodox priest in Smiljan.", "Who was the father of Tesla?")
    assert people[0].text == "Milutin"  # "Tesla" is the question's word
    assert all(any(w[:1].isupper() for w in s.text.split()) for s in people)


def test_function_words_never_open_or_close_a_candidate() -> None:
    for span in candidate_spans(LEAVE, "Who approves the paid leave of full-time employees?"):
        words = span.text.split()
        assert words[0].casefold() not in {"the", "by", "of", "per"} and words[-1].casefold() not in {"the", "by", "of", "per"}


def test_a_sentence_of_question_words_only_has_no_candidates() -> None:
    assert candidate_spans("Tesla was born.", "When was Tesla born?") == []


def test_chinese_number_and_date_questions_get_quantities_with_their_unit() -> None:
    railway = "河茂铁路是中国穿行于广东西部的一条铁路线，全长61公里，共设7座车站。"
    assert [s.text for s in candidate_spans(railway, "河茂铁路全长有多少公里？")][0] == "61公里"  # not "一条"
    case = "案件发生于1969年至1970年间，当时廉政公署仍未成立。"
    assert [s.text for s in candidate_spans(case, "毒马案发生在什么时候？")] == ["1969年至1970年间"]
    # The question's own year is not an answer.
    assert [s.text for s in candidate_spans("1970年前只剩下150头。", "1970年前克什米尔马鹿只剩下多少头？")] == ["150头"]
    # Other questions get the text standing where their question word stands; none here.
    assert candidate_spans(case, "毒马案对香港赛马事业产生了什么影响？") == []


@pytest.mark.parametrize(("sentence", "question", "answer"), [
    # Between the words before the question word and the words after it.
    ("蓝湾电台是一家以粤语广播的社区电台，成立于2001年。", "蓝湾电台是一家以什么语言广播的社区电台？", "粤语"),
    # Up to the clause's end when the question ends with its question word; "叫" is not in the sentence.
    ("林默，本名陈思远，是一名插画家。", "林默的本名叫什么？", "陈思远"),
    # Quotation marks and a leading "为" are not part of the answer.
    ("这种点心，原名“桂花酥”，也称“白云酥”。", "这种点心原名是什么？", "桂花酥"),
    ("研究组把这一类定义为：体长不足一米的夜行鸟类。", "这一类的定义是什么？", "体长不足一米的夜行鸟类"),
])
def test_chinese_questions_get_the_text_where_their_question_word_stands(sentence: str, question: str, answer: str) -> None:
    assert candidate_spans(sentence, question)[0].text == answer


def test_a_chinese_subject_alone_does_not_anchor_an_answer() -> None:
    """ "X在哪里": all that comes before the question word is the subject, and what follows the
    subject in the sentence is not where the place is."""
    sentence = "青石桥（Qingshi Bridge）是一座石拱桥，位于城东运河之上。"
    assert candidate_spans(sentence, "青石桥在哪里？") == []


class _KeywordEmbedder:
    """Texts naming "priest" point one way, all others another: the question with "an Orthodox
    priest" in place of "what" is then the one statement that reads like the sentence."""

    model_id, dim, languages = "test/keyword", 2, ("en",)

    def embed(self, texts, show_progress=False):  # type: ignore[no-untyped-def]
        import numpy as np

        return np.array([[1.0, 0.0] if "priest" in t else [0.0, 1.0] for t in texts], np.float32)


def test_the_statement_gain_prefers_the_candidate_that_turns_the_question_into_the_sentence() -> None:
    from citekb.generation.spans import scored_candidates, statement_gains

    question = "What was Milutin Tesla?"
    plain = candidate_spans(TESLA, question)
    assert "priest" not in plain[0].text  # by shape alone another candidate comes first
    informed = candidate_spans(TESLA, question, embedder=_KeywordEmbedder())
    assert "priest" in informed[0].text
    assert statement_gains(_KeywordEmbedder(), TESLA, question, ["an Orthodox priest", "Smiljan"]) == [1.0, 0.0]
    # Without an embedder the gain is 0 and the score is the shape score alone.
    assert all(features[-1] == 0.0 for _, features in scored_candidates(TESLA, question))


def test_alignment_features_mark_question_words_framing_a_candidate() -> None:
    """The last three features: two question words just before the candidate, two just after it,
    and the noun the question word asks about next to it ("Pictish | tribes" for "What tribes")."""
    sentence = "The Romans built a wall because they feared the Pictish tribes of the north."
    features = {span.text: f[-3:] for span, f in scored_candidates(sentence, "What tribes did the Romans fear?")}
    assert features["Pictish"][2] == 1.0 and features["north"][2] == 0.0
    shipped = "In 1530 a royal act restricted shipments of coal from Tyneside."
    features = {span.text: f[-3:] for span, f in scored_candidates(shipped, "What did a 1530 royal act restrict shipments of?")}
    assert features["coal"][0] == 1.0 and features["Tyneside"][0] == 0.0
