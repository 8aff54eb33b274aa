"""What a question asks for, and the short spans of a sentence that could be its answer.

A question's answer type comes from its wh-phrase: "how many"/"how much" asks for a number,
"when"/"what year" for a date, "who" for a person's name, "where" for a place, anything else
for some noun phrase. A sentence holds that type when it has a word of it that the question
does not (a question naming 1856 is not answered by 1856).

Answer candidates are SQuAD-shaped: runs of a sentence's words that the question does not hold
(words the question holds frame the answer, they are not it), never across a comma or a bracket,
trimmed of function words at either end, plus the pieces of a long run between its function
words. For a typed question only runs holding a word of the type are kept (cut down to that word
group when the run is long). Candidates come best first by a heuristic score: a weighted sum
(SPAN_WEIGHTS) of shape features such as the distance to the question's words in the sentence,
the length, a capital, a determiner or a word like "called" or "as" just before, an adverb or a
participle at the end. A Chinese question asking for a number or a date gets the sentence's
numbers and dates with their unit (chinese_candidates); any other Chinese question gets the text
that stands where its question word stands, between the question's words before it and after it
(chinese_aligned)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from citekb.retrieval.analyze import ENGLISH_STOPWORDS, analyze, query_language

AnswerType = Literal["number", "date", "person", "place", "other"]

# First match wins: "how many years" asks for a number, "what year" for a date.
_TYPE_PATTERNS: tuple[tuple[AnswerType, re.Pattern[str]], ...] = (
    ("date", re.compile(r"\b(when|what (year|years|date|day|month|century|decade|era|time period)|which (year|date|month|century|decade)|in what (year|month|century)|how long ago)\b")),
    ("number", re.compile(r"\b(how (many|much|long|far|old|large|big|high|tall|often|fast|deep|wide)|what (percentage|percent|proportion|number|amount|size|population)|by how)\b")),
    ("person", re.compile(r"\b(who|whom|whose|which (person|man|woman|king|president|scientist|author))\b")),
    ("place", re.compile(r"\b(where|what (city|country|state|place|region|continent|town|island)|which (city|country|state|place|region|continent|town|island))\b")),
    ("number", re.compile(r"(多少|几)")),
    ("date", re.compile(r"(什么时候|何时|哪一?年|哪天|哪个月|哪个世纪)")),
    ("person", re.compile(r"(谁)")),
    ("place", re.compile(r"(哪里|哪儿|在哪)")),
)

_MONTHS = frozenset("january february march april may june july august september october november december".split())
_NUMBER_WORDS = frozenset("""one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million
    billion trillion dozen half quarter first second third fourth fifth""".split())
_DATE_WORDS = frozenset("century centuries decade bc ad bce ce".split()) | _MONTHS
# Function words that never open or close an answer (SQuAD scoring drops articles anyway).
_FUNCTION = ENGLISH_STOPWORDS | frozenset("""over under between during through within without upon via per
    like while since until although though because however including both either neither
    very more most less least only just those latter former much many same various several""".split())
# A word: digits with their separators ("3,000", "1.5%", "$20"), or letters with inner
# apostrophes and hyphens; everything else between words is punctuation or space.
_WORD = re.compile(r"[$£€¥]?\d(?:[\d,.:](?=\d)|\d)*%?|[^\W_](?:[\w'’\-](?=\w)|\w)*", re.UNICODE)
_BREAK = re.compile(r"[,;:()\[\]{}\"“”—–!?]|\s-\s")


def answer_type(question: str) -> AnswerType:
    """The kind of answer question asks for ("other": some noun phrase)."""
    lowered = question.casefold()
    for kind, pattern in _TYPE_PATTERNS:
        if pattern.search(lowered):
            return kind
    return "other"


@dataclass(frozen=True, slots=True)
class Span:
    """text[start:end] of the sentence it was cut from, with its heuristic score."""

    start: int
    end: int
    text: str
    score: float


def _is_number(word: str) -> bool:
    return any(ch.isdigit() for ch in word) or word.casefold() in _NUMBER_WORDS


def _is_date(word: str) -> bool:
    folded = word.casefold()
    if folded in _DATE_WORDS or re.fullmatch(r"\d{1,2}(st|nd|rd|th)", folded):
        return True
    digits = re.fullmatch(r"(\d{3,4})s?", folded)
    return bool(digits) and 100 <= int(digits.group(1)) <= 2100


def _is_name(word: str, first: bool) -> bool:
    return word[:1].isupper() and not first and word.casefold() not in _FUNCTION


def word_has_type(word: str, kind: AnswerType, first: bool = False) -> bool:
    """Is word (the first of its sentence when first) of the answer type kind?"""
    if kind == "number":
        return _is_number(word)
    if kind == "date":
        return _is_date(word)
    if kind in ("person", "place"):
        return _is_name(word, first)
    return False


def holds_type(sentence: str, question: str, kind: AnswerType | None = None) -> bool:
    """Does sentence hold a word of the question's answer type that the question does not?
    Always False for "other" (any noun phrase could answer)."""
    kind = kind or answer_type(question)
    if kind == "other":
        return False
    asked = {w.casefold() for w in _WORD.findall(question)}
    return any(word_has_type(m.group(), kind, m.start() == 0) and m.group().casefold() not in asked
               for m in _WORD.finditer(sentence))


def candidate_spans(sentence: str, question: str, max_words: int = 8, embedder: Embedder | None = None) -> list[Span]:
    """Answer candidates in sentence for question, best first (see the module docstring);
    empty when every word of the sentence is in the question. With an embedder, each English
    candidate is also scored by how much closer to the sentence the question comes when the
    candidate takes the place of its question word (statement_gains)."""
    if query_language(question) == "zh":
        return chinese_candidates(sentence, question)
    return [span for span, _ in scored_candidates(sentence, question, max_words, embedder=embedder)]


_CHINESE_NUMBER = r"[0-9０-９一二三四五六七八九十百千万亿两零〇][0-9０-９一二三四五六七八九十百千万亿两零〇.,，]*"
# A number or a date with its unit or range: "61公里", "1969年至1970年间", "1953年", "150头".
_CHINESE_QUANTITY = re.compile(
    rf"{_CHINESE_NUMBER}(?:多)?(?:年代|世纪|年|月|日|号)?(?:(?:至|到|-|－|—|~){_CHINESE_NUMBER}(?:年代|世纪|年|月|日|号)?)?(?:间)?")


def chinese_candidates(sentence: str, question: str) -> list[Span]:
    """For a Chinese question asking for a number (多少, 几) or a date (什么时候, 哪年): the
    numbers and dates of sentence that the question does not hold, with the unit after a number
    (the one the question names after 多少/几, else one character: 头, 人, 座), nearest the
    question's words first. Any other Chinese question gets chinese_aligned's candidates."""
    kind = answer_type(question)
    if kind not in ("number", "date"):
        return chinese_aligned(sentence, question)
    named = re.search(r"(?:多少|几)([\u4e00-\u9fff]{1,2})", question)
    unit = next((named.group(1)[:n] for n in (2, 1) if named and named.group(1)[:n] in sentence), "")
    out: list[Span] = []
    asked = set(question)
    anchors = [i for i, ch in enumerate(sentence) if ch in asked and not ch.isspace()]
    for m in _CHINESE_QUANTITY.finditer(sentence):
        text = m.group().rstrip(".,，")
        # "一" alone is mostly an article ("一条铁路"), not a count.
        if not (any(ch.isdigit() for ch in text) or len(text) > 1 and any(ch in "二三四五六七八九十百千万亿两" for ch in text)) \
                or text in question:
            continue
        if kind == "date" and not re.search(r"年|月|日|世纪|^\d{3,4}$", text):
            continue
        end = m.start() + len(text)
        if kind == "number" and end < len(sentence) and "\u4e00" <= sentence[end] <= "\u9fff" and not text.endswith(("年", "月", "日")):
            # The unit the question names after 多少/几 ("多少公里"), else one character (头, 人, 座).
            end += len(unit) if unit and sentence.startswith(unit, end) else 1
        distance = min((min(abs(i - m.start()), abs(i - end)) for i in anchors), default=len(sentence))
        out.append(Span(m.start(), end, sentence[m.start():end], -float(distance)))
    out.sort(key=lambda s: (-s.score, s.start))
    return out


def scored_candidates(sentence: str, question: str, max_words: int = 8, weights: tuple[float, ...] | None = None,
                      embedder: Embedder | None = None) -> list[tuple[Span, tuple[float, ...]]]:
    """candidate_spans with the features each was scored on (weights: SPAN_WEIGHTS unless given)."""
    weights = weights or SPAN_WEIGHTS
    kind = answer_type(question)
    asked_terms = set(analyze(question))
    asked_words = {w.casefold() for w in _WORD.findall(question)}
    words = list(_WORD.finditer(sentence))
    if not words:
        return []
    in_question = [m.group().casefold() in asked_words or bool(set(analyze(m.group())) & asked_terms) for m in words]
    function = [m.group().casefold() in _FUNCTION and not in_question[i] for i, m in enumerate(words)]
    runs: list[tuple[int, int]] = []  # [first, last) word indices
    first = None
    for i, m in enumerate(words):
        broken = i > 0 and bool(_BREAK.search(sentence, words[i - 1].end(), m.start()))
        if first is not None and (in_question[i] or broken):
            runs.append((first, i))
            first = None
        if first is None and not in_question[i]:
            first = i
    if first is not None:
        runs.append((first, len(words)))
    pieces: set[tuple[int, int]] = set()
    for a, b in runs:
        pieces.add(_trim(a, b, function))
        # The pieces between a long run's function words: "the first ruler of the Normans" also
        # offers "first ruler" and "Normans".
        start = a
        for i in range(a, b + 1):
            if i == b or function[i]:
                if start < i:
                    pieces.add(_trim(start, i, function))
                start = i + 1
    typed = [word_has_type(m.group(), kind, m.start() == 0) for m in words] if kind != "other" else [False] * len(words)
    if kind != "other":
        # A typed question is answered by a group of words of its type (and what joins them:
        # "June 28, 1914", "3 million").
        groups, i = set(), 0
        while i < len(words):
            if typed[i] and not in_question[i]:
                j = i + 1
                while j < len(words) and (typed[j] or (j + 1 < len(words) and typed[j + 1] and words[j].group().casefold() in ("of", "and"))) \
                        and not in_question[j]:
                    j += 1
                groups.add((i, j))
                i = j
            else:
                i += 1
        pieces |= groups
        pieces = {(a, b) for a, b in pieces if any(typed[a:b])}
    anchors = [i for i, q in enumerate(in_question) if q]
    head = _wh_head(question)
    heads = [bool(head) and _same_word(m.group(), head) for m in words]
    maximal = {_trim(a, b, function) for a, b in runs}
    kept = sorted((a, b) for a, b in pieces if a < b and b - a <= max_words)
    texts = [sentence[words[a].start():words[b - 1].end()] for a, b in kept]
    gains = statement_gains(embedder, sentence, question, texts) if embedder is not None and len(kept) > 1 else [0.0] * len(kept)
    out: list[tuple[Span, tuple[float, ...]]] = []
    for (a, b), text, gain in zip(kept, texts, gains):
        features = (*_features(words, a, b, anchors, in_question, typed, (a, b) in maximal), gain,
                    *_alignment(a, b, in_question, heads))
        score = sum(w * f for w, f in zip(weights, features))
        out.append((Span(words[a].start(), words[b - 1].end(), text, score), features))
    out.sort(key=lambda pair: (-pair[0].score, pair[0].start))
    return out


# The question phrase a candidate answer takes the place of: "what", "which kind of", "who".
_WH_PHRASE = re.compile(r"\b(what|which|who|whom|whose|where|when)\b(\s+(kind|type|sort) of)?", re.IGNORECASE)


def statement_gains(embedder: Embedder, sentence: str, question: str, candidates: list[str]) -> list[float]:
    """For each candidate, the embedder's cosine between the sentence and the question with the
    candidate in place of its question phrase ("What deals with classifying problems?" becomes
    "Computational complexity theory deals with classifying problems"), less the cosine between
    the sentence and the question itself. The right answer turns the question into what the
    sentence says; a wrong one into something it does not."""
    asked = question.strip().rstrip("?？").strip()
    statements = [_WH_PHRASE.sub(lambda _: c, asked, count=1) if _WH_PHRASE.search(asked) else f"{asked} {c}"
                  for c in candidates]
    vectors = embedder.embed([sentence, asked, *statements])
    base = float(vectors[1] @ vectors[0])
    return [float(v @ vectors[0]) - base for v in vectors[2:]]


_DETERMINERS = frozenset("the a an its their his her this these those our your each every".split())
# Words after which an answer often follows: "is called X", "known as X", "such as X".
_TRIGGERS = frozenset("called named as include includes including included is are was were such known termed than by".split())
# Weights of the features (_features, the statement gain, then _alignment), fitted (a softmax
# over each question's candidates, trained to put its mass on the candidates of best answer F1,
# L2 1e-3) on the even-numbered English questions of ../shared/data/qa, the chosen sentence
# being the extractive chooser's. On the held-out odd-numbered ones the statement gain
# (statement_gains; 0 without an embedder) lifted the F1 of the first candidate from 0.308 to
# 0.341, the three alignment features from 0.342 to 0.357 (docs/benchmarks.md, "answer-shaped
# spans").
SPAN_WEIGHTS = (-1.053, 0.154, 0.302, 0.076, 0.0, 0.786, -0.778, 0.388, -0.153, -0.263, 0.583, 0.361, -0.157, 0.02,
                -0.975, -0.776, 0.207, -0.532, 3.868, 0.712, 0.571, 1.888)


def _features(words: list[re.Match[str]], a: int, b: int, anchors: list[int], in_question: list[bool],
              typed: list[bool], maximal: bool) -> tuple[float, ...]:
    """What the heuristic score weighs about words[a:b] as an answer."""
    distance = min((min(abs(i - a), abs(i - (b - 1))) for i in anchors), default=10)
    length = b - a
    first, last = words[a].group(), words[b - 1].group()
    before = words[a - 1].group().casefold() if a > 0 else ""
    verb_like = length == 1 and first.islower() and (first.endswith("ed") or first.endswith("ing"))
    return (
        min(distance, 10) / 10,
        float(length == 1), float(length == 2), float(length == 3),
        float(any(typed[a:b])),
        float(first[:1].isupper() and words[a].start() > 0),
        float(verb_like),
        float(before in _TRIGGERS),
        float(a > 0 and in_question[a - 1]),
        float(b < len(words) and in_question[b]),
        float(maximal),
        float(a == 0),
        float(any(ch.isdigit() for ch in first + last)),
        # The shape of a noun phrase, for want of a tagger: a determiner before it, and a last
        # word that is not an adverb or a participle.
        float(before in _DETERMINERS),
        float(last.endswith("ly")),
        float(last.islower() and last.endswith("ed")),
        float(any(words[i].group().endswith("ing") for i in range(a, b))),
        float(length >= 4),
    )


# "what tribes", "which type of revolution": the noun the question word asks about.
_WH_HEAD = re.compile(r"\b(?:what|which)\s+(?:(?:kind|type|sort|form|part|name)\s+of\s+)?([a-z]+)", re.IGNORECASE)
_NOT_HEADS = frozenset("is are was were do does did has have had can could will would should may might must be been".split())


def _wh_head(question: str) -> str:
    m = _WH_HEAD.search(question)
    return m.group(1).casefold() if m and m.group(1).casefold() not in _NOT_HEADS else ""


def _same_word(word: str, head: str) -> bool:
    w = word.casefold()
    return w == head or w.rstrip("s") == head.rstrip("s")


def _alignment(a: int, b: int, in_question: list[bool], heads: list[bool]) -> tuple[float, ...]:
    """How the question's words frame words[a:b]: two of them just before it or just after it
    ("restrict shipments of | coal"), and the noun the question word asks about right after or
    before it ("Pictish | tribes" for "What tribes ...?")."""
    n = len(in_question)
    return (
        float(a > 1 and in_question[a - 1] and in_question[a - 2]),
        float(b + 1 < n and in_question[b] and in_question[b + 1]),
        float(b < n and heads[b] or a > 0 and heads[a - 1]),
    )


def _trim(a: int, b: int, function: list[bool]) -> tuple[int, int]:
    while a < b and function[a]:
        a += 1
    while b > a and function[b - 1]:
        b -= 1
    return a, b


# The question word of a Chinese question, and what may follow it at the end ("呢", "？").
_CHINESE_ASK = re.compile(r"为什么|为何|什么样的?|什么|哪一?些|哪一?个|哪里|哪儿|哪|谁|怎么样|怎样|怎么|如何|啥")
_CHINESE_END = re.compile(r"[呢呀吗啊吧]?[\s？?。！!]*$")
_CHINESE_CLAUSE_END = frozenset("，。；！？,;!?：:")
_CHINESE_TRIM = " ，,、：:（）()“”\"'「」为是了的"


def chinese_aligned(sentence: str, question: str, max_chars: int = 48) -> list[Span]:
    """The text of sentence that stands where the question has its question word: after the
    longest ending of the words before it ("卫视卡式台是一条以" ... "以华语") and up to the longest
    run of the words after it ("语言广播的电影频道" ... "广播"), or up to the clause's end when
    the question ends there ("班杰的本名叫什么" → "本名王宏文，" → "王宏文"). The last character or
    two before the question word ("叫", "为") and the word that names the answer's kind after it
    ("语言") may be missing from the sentence. Best anchored first; none when no two characters
    before the question word are in sentence."""
    ask = _CHINESE_ASK.search(question)
    if ask is None:
        return []
    left = question[: ask.start()]
    right = _CHINESE_END.sub("", question[ask.end():])
    starts: dict[int, float] = {}  # where an answer may start -> how well anchored
    for skip in range(min(3, len(left) - 1)):
        if skip and re.sub(r"[《》“”「」\"]", "", left[: len(left) - skip]) in sentence:
            continue  # all the question has before "在哪里" is its subject: what follows that is anything
        for n in range(min(len(left) - skip, 16), 1, -1):  # one character is too common to anchor on
            anchor = left[len(left) - skip - n: len(left) - skip]
            occurrences = list(re.finditer(re.escape(anchor), sentence))
            for found in occurrences:
                if skip and found.start() <= 1:
                    continue  # the sentence's subject, as above
                starts[found.end()] = max(starts.get(found.end(), 0.0), n - skip)
            if occurrences:
                break
    spans: dict[tuple[int, int], float] = {}
    for start, anchored in starts.items():
        end, bonus = _clause_end(sentence, start, max_chars), 0.0
        for skip in range(min(4, len(right))):
            for m in range(min(len(right) - skip, 16), 1, -1):
                at = sentence.find(right[skip: skip + m], start + 1, end + m)
                if at > start and m - skip > bonus:
                    end, bonus = at, m - skip
                    break
        raw = sentence[start:end]
        text = raw.strip(_CHINESE_TRIM)
        if len(text) < 2 and end < len(sentence) and not bonus:  # "定义为：" → the clause after it
            raw = sentence[start:_clause_end(sentence, end + 1, max_chars)]
            text = raw.strip(_CHINESE_TRIM)
        if text and not set(text) <= set(question):
            first = start + raw.index(text)
            key = (first, first + len(text))
            spans[key] = max(spans.get(key, -1.0), anchored + bonus - len(text) / max_chars)
    return [Span(a, b, sentence[a:b], score) for (a, b), score in sorted(spans.items(), key=lambda kv: (-kv[1], kv[0]))]


def _clause_end(sentence: str, start: int, max_chars: int) -> int:
    """Where the clause that start is in ends (at most max_chars on)."""
    for i in range(start, min(len(sentence), start + max_chars)):
        if sentence[i] in _CHINESE_CLAUSE_END:
            return i
    return min(len(sentence), start + max_chars)
