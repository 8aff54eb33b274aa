"""The extractive backend: answers with the sentences of the best hits that share the most
question terms (weighted by how rare each term is among the candidate sentences), each cited
by the page and lines of the sentence itself."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from citekb.ingest.document import Chunk
from citekb.ingest.sentences import split_sentences
from citekb.retrieval.analyze import analyze
from citekb.retrieval.hit import Hit

from .answer import Answer, Citation
from .base import NOT_FOUND
from .config import ExtractiveConfig


@dataclass(frozen=True, slots=True)
class _Sentence:
    hit_rank: int
    chunk: Chunk
    start: int
    end: int
    terms: frozenset[str]

    @property
    def text(self) -> str:
        return self.chunk.text[self.start:self.end]


class ExtractiveGenerator:
    name = "extractive"

    def __init__(self, cfg: ExtractiveConfig = ExtractiveConfig()) -> None:
        self.cfg = cfg

    @classmethod
    def from_config(cls, cfg: ExtractiveConfig) -> ExtractiveGenerator:
        return cls(cfg)

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        question_terms = set(analyze(question))
        sentences = [s for rank, hit in enumerate(hits[: self.cfg.top_chunks]) for s in _sentences(hit.chunk, rank)]
        if not question_terms or not sentences:
            return Answer(text=NOT_FOUND, citations=(), hits=tuple(hits), grounded=False)
        df = Counter(t for s in sentences for t in s.terms)
        # Rare terms decide: a term in every candidate sentence says nothing about which one answers.
        weight = {t: math.log(1 + len(sentences) / (1 + df[t])) for t in question_terms}
        total = sum(weight.values())
        scored = sorted(
            ((sum(weight[t] for t in question_terms & s.terms) / total - 0.01 * s.hit_rank, s) for s in sentences),
            key=lambda pair: -pair[0],
        )
        best = scored[0][0]
        if best < self.cfg.min_support:
            return Answer(text=NOT_FOUND, citations=(), hits=tuple(hits), grounded=False)
        chosen = [s for score, s in scored[: self.cfg.max_sentences] if score >= best * self.cfg.keep_ratio]
        chosen.sort(key=lambda s: (s.hit_rank, s.start))  # read in document order within a passage
        citations = []
        parts = []
        for n, sentence in enumerate(chosen, 1):
            citations.append(Citation(n=n, chunk_id=sentence.chunk.chunk_id,
                                      locator=sentence.chunk.locate(sentence.start, sentence.end), quote=sentence.text))
            parts.append(f"{sentence.text} [{n}]")
        return Answer(text=" ".join(parts), citations=tuple(citations), hits=tuple(hits), grounded=True)


def _sentences(chunk: Chunk, rank: int) -> list[_Sentence]:
    """The sentences of a chunk, never across its block boundaries (a heading has no full stop)."""
    out = []
    for span in chunk.spans:
        block = chunk.text[span.start:span.end]
        for start, end in split_sentences(block):
            terms = frozenset(analyze(block[start:end]))
            if terms:
                out.append(_Sentence(rank, chunk, span.start + start, span.start + end, terms))
    return out
