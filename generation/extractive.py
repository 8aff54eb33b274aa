"""The extractive backend: answers with the sentences of the best hits that best match the
question, each cited by the page and lines of the sentence itself. A sentence's score is the
share of the question's term weight it contains (terms weighted by how rare they are among
the candidate sentences) plus, with an embedder, its cosine similarity to the question."""

from __future__ import annotations

from collections.abc import Sequence

from citekb.retrieval.analyze import analyze
from citekb.retrieval.embed import Embedder
from citekb.retrieval.hit import Hit

from .answer import Answer, Citation
from .base import NOT_FOUND
from .config import ExtractiveConfig
from .verify import cosines, overlap, passage_sentences, term_weights


_RANK_PENALTY = 0.01  # per rank of the hit a sentence comes from: ties go to the better passage


class ExtractiveGenerator:
    name = "extractive"

    def __init__(self, cfg: ExtractiveConfig = ExtractiveConfig(), embedder: Embedder | None = None) -> None:
        self.cfg = cfg
        self.embedder = embedder

    @classmethod
    def from_config(cls, cfg: ExtractiveConfig, embedder: Embedder | None = None) -> ExtractiveGenerator:
        return cls(cfg, embedder)

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        question_terms = set(analyze(question))
        sentences = [s for rank, hit in enumerate(hits[: self.cfg.top_chunks]) for s in passage_sentences(hit.chunk, rank)]
        if not question_terms or not sentences:
            return Answer(text=NOT_FOUND, citations=(), hits=tuple(hits), grounded=False)
        # Rare terms decide: a term in every candidate sentence says nothing about which one answers.
        weight = term_weights(question_terms, sentences)
        lexical = [overlap(weight, s.terms) for s in sentences]
        similarity = cosines(self.embedder, question, [s.text for s in sentences])
        if not self._answers(lexical, similarity):
            return Answer(text=NOT_FOUND, citations=(), hits=tuple(hits), grounded=False)
        semantic = similarity if similarity is not None else [0.0] * len(sentences)
        scored = sorted(
            ((lex + self.cfg.semantic_weight * sem - _RANK_PENALTY * s.hit_rank, s) for lex, sem, s in zip(lexical, semantic, sentences)),
            key=lambda pair: -pair[0],
        )
        best = scored[0][0]
        chosen = [scored[0][1]] + [s for score, s in scored[1 : self.cfg.max_sentences] if score >= best * self.cfg.keep_ratio]
        chosen.sort(key=lambda s: (s.hit_rank, s.start))  # read in document order within a passage
        citations = []
        parts = []
        for n, sentence in enumerate(chosen, 1):
            citations.append(Citation(n=n, chunk_id=sentence.chunk.chunk_id,
                                      locator=sentence.chunk.locate(sentence.start, sentence.end), quote=sentence.text))
            parts.append(f"{sentence.text} [{n}]")
        return Answer(text=" ".join(parts), citations=tuple(citations), hits=tuple(hits), grounded=True)


    def _answers(self, lexical: list[float], similarity: list[float] | None) -> bool:
        """Does some sentence answer? One holding enough of the question's term weight that is
        also about the same thing (the embedder agrees a little), or, for a paraphrase sharing
        few words, one the embedder finds close in meaning. Without an embedder, terms alone."""
        if similarity is None:
            return max(lexical) >= self.cfg.min_support
        return any(
            (lex >= self.cfg.min_support and sim >= self.cfg.min_related) or sim >= self.cfg.min_similarity
            for lex, sim in zip(lexical, similarity)
        )
