from __future__ import annotations

import pytest

from citekb.retrieval.analyze import analyze, query_language
from citekb.retrieval.keyword import Bm25Index


def test_english_is_casefolded_stopped_and_stemmed() -> None:
    assert analyze("The quick brown foxes jumped over the lazy dogs") == ["quick", "brown", "fox", "jump", "over", "lazi", "dog"]


def test_inflections_meet_on_one_stem_and_repeats_are_kept() -> None:
    assert analyze("Passwords PASSWORD password") == ["password", "password", "password"]
    assert analyze("running runs") == analyze("run run")


def test_a_question_of_only_stop_words_has_no_terms() -> None:
    assert analyze("What is it, and how would they do that?") == []
    assert analyze("") == []


def test_unicode_is_normalised_before_matching() -> None:
    assert analyze("ＡＢＣ１２３ ﬁle") == ["abc123", "file"]  # full-width letters, the fi ligature


def test_punctuation_splits_words() -> None:
    assert analyze("e-mail, 3.5 x_y!") == ["e", "mail", "3", "5", "x", "y"]


def test_chinese_is_segmented_and_stop_words_dropped() -> None:
    terms = analyze("员工请假需要提前三天申请。")
    assert {"员工", "请假", "提前", "申请"} <= set(terms)
    assert "。" not in terms
    assert not {"的", "是", "什么"} & set(analyze("年假是什么的规定"))


def test_a_chinese_query_term_matches_the_documents_terms() -> None:
    query = set(analyze("请假需要提前多少天申请？"))
    document = set(analyze("员工请假需要提前三天申请。"))
    assert {"请假", "提前", "申请"} <= query & document
    # Search-mode segmentation also emits the short words inside long ones.
    assert set(analyze("共和国")) <= set(analyze("中华人民共和国成立了"))


def test_words_are_split_where_the_script_changes() -> None:
    assert analyze("GDP增长") == ["gdp", "增长", "增", "长"]


def test_chinese_words_also_emit_their_characters() -> None:
    # "离墙" and "墙壁" share no word, only the character that matters.
    assert "墙" in set(analyze("机器摆放时需要离墙多远")) & set(analyze("主机应距离墙壁至少 30 厘米放置"))


def test_keyword_search_over_analyzed_chinese_finds_the_right_document() -> None:
    docs = ["员工请假需要提前三天申请。", "滤网建议每六个月更换一次。", "报销需要提交发票。"]
    index = Bm25Index()
    index.add([analyze(d) for d in docs])
    assert [row for row, _ in index.search(analyze("滤网多久更换？"), k=3)] == [1]
    assert index.search(analyze("请假要提前吗"), k=3)[0][0] == 0


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How many days of annual leave?", "en"),
        ("年假有多少天？", "zh"),
        ("员工手册 handbook", "zh"),  # 4 of 12 letters are CJK: over the 30% share
        ("AirPure X3 滤网", "en"),  # 2 of 10: under it
        ("12345 ?!", "en"),  # no letters at all
        ("", "en"),
    ],
)
def test_query_language(text: str, language: str) -> None:
    assert query_language(text) == language
