"""Text analysis for keyword search: the same function turns documents and queries into terms.

Latin words are casefolded, stop words dropped and the rest Snowball-stemmed; Chinese runs are
segmented with jieba (search mode, which also emits the shorter words inside long ones, so
"中华人民共和国" matches a query for "共和国")."""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

import jieba
import Stemmer

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_OR_DIGIT = re.compile(r"[0-9A-Za-z\u00c0-\u024f]+")

# The usual English stop list (Lucene's, extended with question words, which carry no topic).
ENGLISH_STOPWORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there these they
    this to was will with what which who whom whose when where why how did do does done has have had been being
    were am i you he she we me him her us them its our your my his from than so can could would should may might
    must shall also any some all each other about after before""".split()
)
CHINESE_STOPWORDS = frozenset("的 了 是 在 和 与 及 或 也 就 都 而 被 把 对 于 为 以 之 其 这 那 有 个 中 上 下 吗 呢 吧 啊 什么 哪 哪些 哪个 多少 几 谁 如何 怎么 怎样 为什么".split())

_CJK_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def query_language(text: str) -> str:
    """"zh" when CJK characters make up a fair share of the letters, else "en"."""
    letters = sum(ch.isalpha() for ch in text)
    cjk = len(_CJK_CHAR.findall(text))
    return "zh" if letters and cjk / letters >= 0.3 else "en"


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _jieba() -> jieba.Tokenizer:
    tokenizer = jieba.Tokenizer()
    # jieba logs "Building prefix dict..." at INFO on its own handler; that is not ours to show.
    jieba.setLogLevel(logging.WARNING)
    tokenizer.initialize()
    return tokenizer


def analyze(text: str) -> list[str]:
    """The terms of text, in order, repeats kept (BM25 counts them)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    terms: list[str] = []
    for word in _WORD.findall(text):
        terms.extend(_word_terms(word))
    return terms


@lru_cache(maxsize=1 << 18)
def _word_terms(word: str) -> tuple[str, ...]:
    """The terms of one word of normalised text: a word's terms depend on it alone, so each
    distinct word is stemmed (or segmented) once, not every time a text holding it is analysed
    (search analyses the sentences of every candidate chunk it has not seen before)."""
    terms: list[str] = []
    for run in _split_scripts(word):
        if _CJK_RUN.fullmatch(run):
            words = [t for t in _jieba().cut_for_search(run) if t.strip() and t not in CHINESE_STOPWORDS]
            terms.extend(words)
            # Single characters too: "离墙" must meet "墙壁", "机器" meet "主机".
            terms.extend(ch for w in words if len(w) > 1 for ch in w if ch not in CHINESE_STOPWORDS)
        elif run not in ENGLISH_STOPWORDS:
            terms.append(_stemmer().stemWord(run))
    return tuple(terms)


def _split_scripts(word: str) -> list[str]:
    """Split a word where it switches between CJK and other letters ("GDP增长" -> "GDP", "增长")."""
    parts = []
    last = 0
    for match in _CJK_RUN.finditer(word):
        if match.start() > last:
            parts.append(word[last:match.start()])
        parts.append(match.group())
        last = match.end()
    if last < len(word):
        parts.append(word[last:])
    return parts

