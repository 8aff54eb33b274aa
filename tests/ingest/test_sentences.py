from __future__ import annotations

import pytest

from citekb.ingest.sentences import split_sentences


def texts(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def test_offsets_of_two_english_sentences() -> None:
    assert split_sentences("Hello world. This is a test.") == [(0, 12), (13, 28)]


def test_surrounding_whitespace_is_trimmed() -> None:
    assert split_sentences("  Hi there.  ") == [(2, 11)]


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_blank_text_has_no_sentences(text: str) -> None:
    assert split_sentences(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith arrived. He left.", ["Dr. Smith arrived.", "He left."]),
        ("Use e.g. Paris or Rome. Then stop.", ["Use e.g. Paris or Rome.", "Then stop."]),
        ("The U.S. Army left. Next came rain.", ["The U.S. Army left.", "Next came rain."]),
    ],
)
def test_abbreviations_do_not_end_a_sentence(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


def test_lowercase_after_period_and_decimals_do_not_split() -> None:
    assert texts("Version 2.5 is out. it works.") == ["Version 2.5 is out. it works."]


def test_digit_after_period_starts_a_sentence() -> None:
    assert texts("Pay 45 EUR. 3 days later, ok.") == ["Pay 45 EUR.", "3 days later, ok."]


def test_question_marks_quotes_and_brackets() -> None:
    assert texts('Is it? "Yes," she said. (Really.) Fine.') == ['Is it?', '"Yes," she said.', "(Really.)", "Fine."]


def test_chinese_sentences_end_at_full_width_marks_without_spaces() -> None:
    assert split_sentences("今天下雨。明天晴天！后天呢？") == [(0, 5), (5, 10), (10, 14)]


def test_chinese_closing_quote_stays_with_its_sentence() -> None:
    assert texts("他说：“好。”然后走了。") == ["他说：“好。”", "然后走了。"]


def test_spans_cover_all_non_space_text_in_order() -> None:
    text = "One. Two! Three? 四。五！ Six."
    spans = split_sentences(text)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert "".join(text[a:b] for a, b in spans) == text.replace(" ", "")
