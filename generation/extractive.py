"""The extractive backend: answers with the sentence of the best hits that best answers the
question, cited by the page and lines of the sentence itself.

The sentence chooser (rank_sentences) is shared with the tinyllm backend, which quotes from the
sentence it ranks first. Each candidate sentence of the top hits is scored by a weighted sum of
features: the share of the question's term weight it holds (terms weighted by how rare they are
among the candidates), the embedder's cosine to the question and the product of the two, the
share of the question's adjacent term pairs it holds, its hit's retrieval score and rank, whether
it holds a word of the type the question asks for (a number for "how many", a date for "when",
a name for "who"; generation/spans.py), and whether it is the embedder's closest. The weights
(ExtractiveConfig) were fitted on half of ../shared/data/qa's English questions. A softmax of
the scores gives the chosen sentence a confidence; below min_confidence the backend abstains."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from citekb.ingest.document import Chunk
from citekb.retrieval.analyze import analyze
from citekb.retrieval.embed import Embedder
from citekb.retrieval.hit import Hit

from .answer import Answer, Citation
from .base import NOT_FOUND
from .config import ExtractiveConfig
from .spans import answer_type, holds_type
from .verify import PassageSentence, cosines, overlap, passage_sentences, term_weights


@dataclass(frozen=True, slots=True)
class RankedSentence:
    """A candidate sentence with its chooser score, its share of the softmax over all candidates'
    scores (confidence), and the two scores the abstention check reads."""

    sentence: PassageSentence
    score: float
    confidence: float
    lexical: float
    similarity: float | None


def rank_sentences(question: str, chunks: Sequence[Chunk], embedder: Embedder | None = None,
                   cfg: ExtractiveConfig = ExtractiveConfig(),
                   hit_scores: Sequence[float] | None = None) -> list[RankedSentence]:
    """The sentences of chunks (the hits, best first; hit_scores their retrieval scores, if
    known), best answer to question first; empty when the question or the chunks have no terms."""
    terms = set(analyze(question))
    candidates = [s for rank, chunk in enumerate(chunks) for s in passage_sentences(chunk, rank)]
    if not terms or not candidates:
        return []
    weights = term_weights(terms, candidates)
    lexical = [overlap(weights, s.terms) for s in candidates]
    similarity = cosines(embedder, question, [s.text for s in candidates])
    semantic = similarity or [0.0] * len(candidates)
    closest = max(semantic) if similarity is not None else math.inf
    asked_pairs = _pairs(analyze(question))
    kind = answer_type(question)
    top = hit_scores[0] if hit_scores else 0.0
    scores = []
    for s, lex, sem in zip(candidates, lexical, semantic):
        # Without scores (or with a best score that cannot be a denominator) every hit counts as the best.
        relative = hit_scores[s.hit_rank] / top if hit_scores is not None and top > 0 else 1.0
        pairs = len(asked_pairs & _pairs(analyze(s.text))) / len(asked_pairs) if asked_pairs else 0.0
        scores.append(cfg.lexical_weight * lex + cfg.semantic_weight * sem + cfg.agreement_weight * lex * sem
                      + cfg.bigram_weight * pairs + cfg.hit_score_weight * relative - cfg.rank_weight * s.hit_rank
                      + cfg.answer_type_weight * (kind != "other" and holds_type(s.text, question, kind))
                      + cfg.closest_weight * (sem >= closest))
    peak = max(scores)
    shares = [math.exp(x - peak) for x in scores]
    total = sum(shares)
    ranked = [RankedSentence(s, x, e / total, lex, similarity[i] if similarity is not None else None)
              for i, (s, x, e, lex) in enumerate(zip(candidates, scores, shares, lexical))]
    ranked.sort(key=lambda r: -r.score)  # stable: document order on ties
    return ranked


def _pairs(terms: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(terms, terms[1:]))


class ExtractiveGenerator:
    name = "extractive"

    def __init__(self, cfg: ExtractiveConfig = ExtractiveConfig(), embedder: Embedder | None = None) -> None:
        self.cfg = cfg
        self.embedder = embedder

    @classmethod
    def from_config(cls, cfg: ExtractiveConfig, embedder: Embedder | None = None) -> ExtractiveGenerator:
        return cls(cfg, embedder)

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        top = hits[: self.cfg.top_chunks]
        ranked = rank_sentences(question, [h.chunk for h in top], self.embedder, self.cfg, [h.score for h in top])
        if not answers(ranked, self.cfg):
            return Answer(text=NOT_FOUND, citations=(), hits=tuple(hits), grounded=False)
        best = ranked[0].confidence
        chosen = [ranked[0].sentence] + [r.sentence for r in ranked[1: self.cfg.max_sentences]
                                         if r.confidence >= best * self.cfg.keep_ratio]
        chosen.sort(key=lambda s: (s.hit_rank, s.start))  # read in document order within a passage
        citations = []
        parts = []
        for n, sentence in enumerate(chosen, 1):
            citations.append(Citation(n=n, chunk_id=sentence.chunk.chunk_id,
                                      locator=sentence.chunk.locate(sentence.start, sentence.end), quote=sentence.text))
            parts.append(f"{sentence.text} [{n}]")
        return Answer(text=" ".join(parts), citations=tuple(citations), hits=tuple(hits), grounded=True)


def answers(ranked: Sequence[RankedSentence], cfg: ExtractiveConfig) -> bool:
    """Does the best-ranked sentence answer? Not when the chooser is unsure of it (its confidence
    below cfg.min_confidence), nor when no sentence holds enough of the question's term weight
    while being about the same thing (the embedder agrees a little), or, for a paraphrase sharing
    few words, is close in meaning. Without the embedder's cosines (none given, or a question in
    a language it does not read, such as Chinese for MiniLM), terms alone: the confidence is a
    softmax of scores whose weights were fitted with the cosines, and without them it abstains
    on answers that are there (on ../shared/data/qa's Chinese questions, 22 of 223, whose
    citations were 99.5% right)."""
    if not ranked:
        return False
    if ranked[0].similarity is None:
        return max(r.lexical for r in ranked) >= cfg.min_support
    if ranked[0].confidence < cfg.min_confidence:
        return False
    return any(
        (r.lexical >= cfg.min_support and r.similarity >= cfg.min_related) or r.similarity >= cfg.min_similarity
        for r in ranked if r.similarity is not None
    )
