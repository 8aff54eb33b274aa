"""Prompts for TinyLM, built the same way for training and for answering:

    <bos> <|system|> <|user|> question <|sep|> [2] sentence … [1] sentence … [1] sentence … <|assistant|> span [n] <eos>

The context is the question's best evidence sentences among the retrieved hits, best first,
ranked by the extractive backend's sentence chooser (generation/extractive.py: rank_sentences,
one implementation for both), each one
preceded by the marker of the hit it comes from. A few sentences instead of whole passages
keep prompts short (about 100 tokens), so training does several times more steps, and the task
left to the model is which sentence and which span. The question comes first: in a causal
model only tokens after it can see it, so every context token can match itself against the
question's words, which is what finding the answer span needs. A passage keeps its tokens' character
offsets in the chunk, so a span copied from it is cited by its exact sentence, page and lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from citekb.ingest.document import Chunk
from citekb.ingest.sentences import split_sentences
from citekb.retrieval.analyze import analyze
from citekb.retrieval.embed import Embedder

from ..config import ExtractiveConfig
from ..extractive import RankedSentence, rank_sentences
from .tokenizer import TinyTokenizer


@dataclass(frozen=True, slots=True)
class Passage:
    """Text of chunk: tokens[i] is chunk.text[offsets[i][0]:offsets[i][1]]. It comes from the
    hit-th hit (0-based) and is cited by marker [hit + 1]."""

    chunk: Chunk
    tokens: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    hit: int = 0

    def char_range(self, first: int, last: int) -> tuple[int, int]:
        """The chunk's [start, end) characters of tokens[first:last], outer whitespace trimmed."""
        start, end = self.offsets[first][0], self.offsets[last - 1][1]
        text = self.chunk.text
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        return start, end

    def word_starts(self) -> list[bool]:
        """For each token, may a quote begin with it? Only at the start of a word (any CJK
        character is one) whose first character is a letter, digit, currency sign or opening quote."""
        text, out = self.chunk.text, []
        for i, (a, b) in enumerate(self.offsets):
            if i and a == self.offsets[i - 1][0]:  # a later byte of a character split into bytes
                out.append(False)
                continue
            rest = text[a:b + 1].lstrip() or " "
            first = rest[0]
            at_word = a == 0 or text[a].isspace() or not _joined(text[a - 1], text[a])
            out.append(at_word and (first.isalnum() or first in _OPENERS))
        return out

    def word_ends(self) -> list[bool]:
        """For each i in 0..len(tokens), may a quote end just before token i (at a word's end)?"""
        text, out = self.chunk.text, []
        for i, (a, _) in enumerate(self.offsets):
            if i and a == self.offsets[i - 1][0]:
                out.append(False)
            else:
                out.append(i > 0 and (a == 0 or text[a].isspace() or not _joined(text[a - 1], text[a])))
        # The window's end is a word's end unless its token budget cut a word in two.
        last = self.offsets[-1][1] if self.offsets else 0
        out.append(bool(self.offsets) and (last >= len(text) or not _joined(text[last - 1], text[last])))
        return out

    def sentence_around(self, start: int, end: int) -> tuple[int, int]:
        """The chunk's sentence holding [start, end) (the sentences it spans, if several)."""
        return sentence_around(self.chunk, start, end)


_OPENERS = "$£€¥\"'“‘(《「"


def _cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _joined(left: str, right: str) -> bool:
    """Are two adjacent characters inside one word? Latin letters and digits join; CJK
    characters stand alone, so a Chinese quote may begin or end at any of them."""
    return left.isalnum() and right.isalnum() and not _cjk(left) and not _cjk(right)


def sentences(chunk: Chunk) -> list[tuple[int, int]]:
    """[start, end) of the chunk's sentences, never across its blocks, headings left out."""
    out = []
    spans = chunk.spans or ()
    blocks = [(s.start, s.end) for s in spans if s.kind != "heading"] if spans else [(0, len(chunk.text))]
    for block_start, block_end in blocks:
        for start, end in split_sentences(chunk.text[block_start:block_end]):
            out.append((block_start + start, block_start + end))
    return out


def sentence_around(chunk: Chunk, start: int, end: int) -> tuple[int, int]:
    """chunk's sentence holding its characters [start, end) (the sentences it spans, if several)."""
    spans = [s for s in sentences(chunk) if s[0] < end and start < s[1]]
    return (spans[0][0], spans[-1][1]) if spans else (start, end)


def best_sentence(chunk: Chunk, question: str) -> int:
    """Index of the chunk's sentence sharing most distinct terms with question (first on ties)."""
    wanted = set(analyze(question))
    spans = sentences(chunk)
    scores = [len(wanted & set(analyze(chunk.text[a:b]))) for a, b in spans]
    return max(range(len(spans)), key=lambda i: (scores[i], -i)) if spans else 0


def evidence(tokenizer: TinyTokenizer, chunks: Sequence[Chunk], question: str, *, count: int, sentence_tokens: int,
             embedder: Embedder | None = None, hit_scores: Sequence[float] | None = None,
             chooser: ExtractiveConfig = ExtractiveConfig()) -> list[Passage]:
    """The count best evidence sentences for question among chunks (the hits, best first), best
    first as the extractive backend ranks them, each a passage of at most sentence_tokens tokens
    labelled with its hit."""
    return passages_of(tokenizer, rank_sentences(question, chunks, embedder, chooser, hit_scores), count=count,
                       sentence_tokens=sentence_tokens)


def passages_of(tokenizer: TinyTokenizer, ranked: Sequence[RankedSentence], *, count: int, sentence_tokens: int) -> list[Passage]:
    """The first count ranked sentences as passages of at most sentence_tokens tokens."""
    return [encode_range(tokenizer, r.sentence.chunk, r.sentence.start, r.sentence.end, sentence_tokens, r.sentence.hit_rank)
            for r in ranked[:count]]


def encode_range(tokenizer: TinyTokenizer, chunk: Chunk, start: int, end: int, budget: int, hit: int = 0) -> Passage:
    """chunk.text[start:end] as a passage, cut at budget tokens (back to a word's end)."""
    ids, offsets = tokenizer.encode_with_offsets(chunk.text[start:end])
    if len(ids) > budget:
        # Cut at budget tokens, and back to the end of a word: a quote never ends inside one.
        cut = budget
        text = chunk.text
        while cut > 1 and _joined(text[start + offsets[cut - 1][1] - 1], text[start + offsets[cut - 1][1]]):
            cut -= 1
        ids, offsets = ids[:cut], offsets[:cut]
    return Passage(chunk, tuple(ids), tuple((a + start, b + start) for a, b in offsets), hit)


def window(tokenizer: TinyTokenizer, chunk: Chunk, anchor: int, budget: int, hit: int = 0) -> Passage:
    """Sentence anchor of chunk and its neighbours (after first, then before) within budget
    tokens; a single sentence longer than budget is cut at budget tokens."""
    spans = sentences(chunk) or [(0, len(chunk.text))]
    anchor = min(max(anchor, 0), len(spans) - 1)
    lo = hi = anchor
    cost = {i: len(tokenizer.encode(chunk.text[a:b])) + 1 for i, (a, b) in enumerate(spans)}
    used = cost[anchor]
    grew = True
    while grew:
        grew = False
        for nxt in (hi + 1, lo - 1):
            if 0 <= nxt < len(spans) and used + cost[nxt] <= budget:
                used += cost[nxt]
                lo, hi = min(lo, nxt), max(hi, nxt)
                grew = True
    return encode_range(tokenizer, chunk, spans[lo][0], spans[hi][1], budget, hit)


def prompt_tokens(tokenizer: TinyTokenizer, passages: Sequence[Passage], question: str, question_budget: int = 48) -> list[int]:
    """The prompt up to and including <|assistant|>; the answer follows it. Each passage is
    preceded by the marker of its hit."""
    return prompt_with_flags(tokenizer, passages, question, question_budget)[0]


def prompt_with_flags(tokenizer: TinyTokenizer, passages: Sequence[Passage], question: str,
                      question_budget: int = 48) -> tuple[list[int], list[int]]:
    """The prompt (as prompt_tokens) and its match flags: 1 for a passage token whose word
    shares a term with the question (a Chinese character: is one of its terms), else 0."""
    asked = frozenset(analyze(question))
    ids = [tokenizer.bos, tokenizer.system, tokenizer.user, *tokenizer.encode(question)[:question_budget], tokenizer.sep]
    flags = [0] * len(ids)
    for passage in passages:
        ids.append(tokenizer.markers[passage.hit])
        ids.extend(passage.tokens)
        flags.append(0)
        flags.extend(match_flags(passage, asked))
    ids.append(tokenizer.assistant)
    flags.append(0)
    return ids, flags


def match_flags(passage: Passage, asked: frozenset[str]) -> list[int]:
    """Per token of passage: 1 if the word it begins in (a CJK character: itself) has one of
    the terms asked, else 0."""
    text, out = passage.chunk.text, []
    for a, b in passage.offsets:
        i = a
        while i < b and text[i].isspace():
            i += 1
        if i >= b:
            out.append(0)
            continue
        if _cjk(text[i]):
            word = text[i]
        else:
            lo, hi = i, i + 1
            while lo > 0 and _joined(text[lo - 1], text[lo]):
                lo -= 1
            while hi < len(text) and _joined(text[hi - 1], text[hi]):
                hi += 1
            word = text[lo:hi]
        out.append(int(not _terms(word).isdisjoint(asked)))
    return out


@lru_cache(maxsize=65536)
def _terms(word: str) -> frozenset[str]:
    return frozenset(analyze(word))
