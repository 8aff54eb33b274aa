"""Grounded QA examples made from the corpus itself, for TinyLM's supervised stage.

From each sentence, candidate answers are picked by their form (years and dates, numbers with
their unit, capitalised names, both sides of "X is Y", a lowercase noun phrase after a
preposition; in Chinese, numbers, 《titles》 and
jieba's names, places and times) and the question is the sentence around the answer with the
answer replaced by a question phrase of its type: either in place ("... signed in what year?")
or moved to the front ("what year ... signed in?"), sometimes as a plain cloze, with a few
words dropped so the question never matches its sentence word for word. Nothing comes from any
held-out or benchmark question."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import jieba
import jieba.posseg

from citekb.ingest.document import Chunk
from citekb.retrieval.analyze import query_language

from .prompt import sentences

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_EN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile(rf"\b(?:\d{{1,2}} (?:{_MONTHS})(?: \d{{4}})?|(?:{_MONTHS}) \d{{1,2}}(?:, \d{{4}})?|(?:{_MONTHS}) \d{{4}})\b")),
    ("year", re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b")),
    ("money", re.compile(r"[£$€¥]\s?\d[\d,.]*(?:\s?(?:million|billion|thousand))?")),
    ("percent", re.compile(r"\b\d[\d,.]*\s?(?:%|percent\b|per cent\b)")),
    ("count", re.compile(r"\b\d[\d,.]*(?:\s(?:million|billion|thousand|hundred))?(?:\s[a-z]+)?")),
    ("name", re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’-]+(?:\s(?:of|the|de|von|van|and|for)?\s?[A-Z][\w'’-]+)*")),
)
_COPULA = re.compile(r"^(?P<subject>[^,;:]{3,80}?)\s(?P<verb>is|was|are|were)\s(?P<object>[^,;:.]{2,60})")
# A lowercase noun phrase of up to three words after a preposition ("... measured in linear time").
_STOP = r"(?!(?:and|or|but|that|which|who|whom|whose|was|is|were|are|be|been|to|in|on|of|for|by|with|as|at|from|it|its)\b)"
_AFTER_PREPOSITION = re.compile(rf"\b(?:in|at|by|from|with|into|during|under|near|as|of|for|on)\s+(?:(?:the|a|an)\s+)?"
                                rf"(?P<phrase>{_STOP}[a-z][\w-]{{2,}}(?:\s{_STOP}[a-z][\w-]+){{0,2}})")
_WH_EN = {
    "date": ("when", "on what date", "what date"), "year": ("what year", "when", "in what year"),
    "money": ("how much", "how much money"), "percent": ("what percentage", "what percent"),
    "name": ("who", "what", "which", "where"), "object": ("what",), "subject": ("what", "who", "which"),
    "phrase": ("what", "what kind of", "which"),
}
_ZH_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("year", re.compile(r"\d{3,4}年")),
    ("date", re.compile(r"(?:\d{1,2}月\d{1,2}日|\d{1,2}月)")),
    ("count", re.compile(r"\d+(?:\.\d+)?(?:万|亿)?(?:[个名人位次种座件米岁天年倍条部所家%％]|公里|平方公里|公顷|千米|厘米|小时|分钟|分|元|万元|亿元)?")),
    ("title", re.compile(r"《[^》]{1,30}》")),
)
_WH_ZH = {"year": ("哪一年", "什么时候"), "date": ("什么时候", "哪一天"), "count": ("多少", "几"), "title": ("哪部作品", "什么"),
          "nr": ("谁",), "ns": ("哪里", "什么地方"), "nt": ("哪个机构", "什么组织"), "nz": ("什么",), "t": ("什么时候",)}
_CLOZE = "____"


@dataclass(frozen=True, slots=True)
class Example:
    """A question about chunk whose answer is chunk.text[answer_start:answer_end], found in
    the sentence chunk.text[sentence_start:sentence_end]."""

    chunk: Chunk
    question: str
    answer_start: int
    answer_end: int
    sentence: int  # index into prompt.sentences(chunk)


def synthesize(chunk: Chunk, rng: random.Random, per_sentence: int = 2) -> Iterator[Example]:
    """Up to per_sentence questions for each sentence of chunk."""
    for index, (start, end) in enumerate(sentences(chunk)):
        text = chunk.text[start:end]
        if len(text) < 12:
            continue
        lang = query_language(text)
        candidates = _candidates_zh(text) if lang == "zh" else _candidates_en(text)
        rng.shuffle(candidates)
        taken: list[tuple[int, int]] = []
        for kind, a, b in candidates:
            if len(taken) >= per_sentence or any(a < y and x < b for x, y in taken):
                continue
            question = _question_zh(text, kind, a, b, rng) if lang == "zh" else _question_en(text, kind, a, b, rng)
            if question and text[a:b].strip().lower() not in question.lower():  # never ask with the answer in view
                taken.append((a, b))
                yield Example(chunk, question, start + a, start + b, index)


def _candidates_en(text: str) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    for kind, pattern in _EN_PATTERNS:
        for m in pattern.finditer(text):
            if not any(m.start() < b and a < m.end() for _, a, b in found) and m.end() - m.start() >= 2:
                found.append((kind, m.start(), m.end()))
    for m in _AFTER_PREPOSITION.finditer(text):
        if not any(m.start("phrase") < b and a < m.end("phrase") for _, a, b in found):
            found.append(("phrase", m.start("phrase"), m.end("phrase")))
    m = _COPULA.match(text)
    for part, kind in (("object", "object"), ("subject", "subject")):
        a, b = (m.start(part), m.end(part)) if m else (0, 0)
        if m and len(m.group(part).split()) <= 6 and not any(a < y and x < b for _, x, y in found):
            found.append((kind, a, b))
    return found


def _candidates_zh(text: str) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    for kind, pattern in _ZH_PATTERNS:
        for m in pattern.finditer(text):
            if not any(m.start() < b and a < m.end() for _, a, b in found):
                found.append((kind, m.start(), m.end()))
    position = 0
    for word, flag in _posseg()(text):
        start, position = position, position + len(word)
        if flag in _WH_ZH and len(word) >= 2 and not any(start < b and a < position for _, a, b in found):
            found.append((flag, start, position))
    return found


@lru_cache(maxsize=1)
def _posseg():  # type: ignore[no-untyped-def]
    jieba.setLogLevel(60)  # jieba announces its dictionary load on its own handler
    return jieba.posseg.POSTokenizer(jieba.Tokenizer()).cut


def _question_en(text: str, kind: str, a: int, b: int, rng: random.Random) -> str | None:
    if kind == "count":
        unit = text[a:b].split()[-1]
        wh = f"how many {unit}" if unit.isalpha() and unit not in ("million", "billion", "thousand", "hundred") else "how many"
    else:
        wh = rng.choice(_WH_EN[kind])
    left, right = text[:a].split(), text[b:].rstrip(" .!?;").split()
    left, right = left[-rng.randint(4, 12):], right[:rng.randint(3, 10)]
    if len(left) + len(right) < 3:
        return None
    keep = lambda words: [w for w in words if rng.random() > 0.15]  # noqa: E731
    roll = rng.random()
    if roll < 0.15:
        words = keep(left) + [_CLOZE] + keep(right)
    elif roll < 0.55:
        words = keep(left) + [wh] + keep(right)
    else:
        words = [wh.capitalize()] + keep(left) + keep(right)
    return " ".join(words).strip(" ,") + "?"


def _question_zh(text: str, kind: str, a: int, b: int, rng: random.Random) -> str | None:
    wh = rng.choice(_WH_ZH[kind])
    # The clause around the answer and, sometimes, the one before it.
    clause_start = max(text.rfind(c, 0, a) for c in "，,；;。") + 1
    if rng.random() < 0.4 and clause_start > 1:
        clause_start = max(text.rfind(c, 0, clause_start - 1) for c in "，,；;。") + 1
    ends = [i for i in (text.find(c, b) for c in "，,；;。！？") if i >= 0]
    clause_end = min(ends) if ends else len(text)
    left, right = text[clause_start:a], text[b:clause_end]
    if len(left) + len(right) < 4:
        return None
    cut = lambda s: "".join(ch for ch in s if rng.random() > 0.08)  # noqa: E731
    hole = _CLOZE if rng.random() < 0.15 else wh
    return f"{cut(left)}{hole}{cut(right)}？"
