"""The prompt and marker mapping the model-writing backends share."""

from __future__ import annotations

import pytest

from citekb.generation.answer import Answer
from citekb.generation.backends.passages import NO_ANSWER, MarkerMapper, build_messages, stream_reply
from citekb.generation.base import NOT_FOUND

from sample_hits import HITS, handbook, security


def test_messages_number_the_passages_and_say_where_they_come_from() -> None:
    system, user = build_messages("How long is leave?", HITS, max_passage_chars=30)
    assert system["role"] == "system" and NO_ANSWER in system["content"]
    assert user["content"] == (f"Passages:\n\n[1] (handbook.pdf, page 3)\n{handbook().text[:30]}\n\n"
                               f"[2] (security.md)\n{security().text[:30]}\n\nQuestion: How long is leave?")


@pytest.mark.parametrize("pieces", [["A [2]. B [1][3], C [2, 1] [7]."], ["A [", "2]. B [1]", "[3], C [2,", " 1] [7", "]."]])
def test_markers_are_renumbered_in_citing_order_and_unknown_ones_dropped(pieces: list[str]) -> None:
    mapper = MarkerMapper(passages=3)
    text = "".join(mapper.feed(p) for p in pieces) + mapper.finish()
    assert text == "A [1]. B [2][3], C [1][2] ."
    assert mapper.cited == {2: 1, 1: 2, 3: 3}
    assert mapper.invalid == [7]


def test_brackets_that_are_not_markers_stay() -> None:
    mapper = MarkerMapper(passages=2)
    assert mapper.feed("  see [a] and [") + mapper.feed("x] or [1") + mapper.finish() == "see [a] and [x] or [1"


def test_a_streamed_reply_joins_to_the_answer_text() -> None:
    *deltas, answer = list(stream_reply(["  Leave is 27 ", "days [", "1", "]. \n"], HITS))
    assert "".join(deltas) == answer.text == "Leave is 27 days [1]."
    assert isinstance(answer, Answer) and [c.chunk_id for c in answer.citations] == ["hb:4"]


@pytest.mark.parametrize("pieces", [["NOT IN ", "DOCU", "MENTS."], ["not in documents"], [], ["  ", "\n"]])
def test_a_streamed_no_answer_is_not_found(pieces: list[str]) -> None:
    *deltas, answer = list(stream_reply(pieces, HITS))
    assert deltas == [NOT_FOUND]
    assert (answer.text, answer.grounded) == (NOT_FOUND, False)


def test_an_answer_starting_like_the_no_answer_phrase_is_shown() -> None:
    *deltas, answer = list(stream_reply(["NOT", " IN", " June: leave expires [2]."], HITS))
    assert "".join(deltas) == answer.text == "NOT IN June: leave expires [1]."
    assert answer.grounded
