"""Hybrid search: BM25 and dense legs over one snapshot, fused (fusion.py), then reranked."""

from __future__ import annotations

import logging

import numpy as np

from citekb.ingest.document import Chunk
from citekb.ingest.errors import ConfigError

from .analyze import analyze, query_language
from .config import RetrievalConfig
from .embed import Embedder
from .fusion import fuse_rrf, fuse_scores
from .hit import Hit
from .indexing import dense_units
from .keyword import Bm25Index
from .rerank import Reranker
from .store import Snapshot

log = logging.getLogger(__name__)

_SENTENCE_CACHE = 200_000  # chunks whose sentence terms are kept between queries


class HybridSearcher:
    def __init__(self, embedder: Embedder, cfg: RetrievalConfig, reranker: Reranker | None = None) -> None:
        self.embedder = embedder
        self.cfg = cfg
        self.reranker = reranker
        self._sentence_terms: dict[str, list[list[str]]] = {}  # chunk_id -> terms of each sentence

    def leg_weights(self, query: str) -> dict[str, float]:
        """The fusion weights for this query: the dense leg drops out for languages its model lacks."""
        weights = dict(self.cfg.weights)
        if query_language(query) not in self.embedder.languages:
            weights["dense"] = 0.0
        if not any(w > 0 for w in weights.values()):
            weights["bm25"] = 1.0  # a dense-only setup still answers queries in other languages by keywords
        return weights

    def search(self, snapshot: Snapshot, query: str, k: int = 10, mask: np.ndarray | None = None) -> list[Hit]:
        """Up to k hits, best first. mask (one bool per chunk row) limits every leg to those rows."""
        query = query.strip()
        if not query:
            raise ConfigError("the query is empty")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        weights = self.leg_weights(query)
        n = max(self.cfg.candidates, k)
        legs: dict[str, list[tuple[int, float]]] = {}
        terms = analyze(query)
        if weights.get("bm25", 0) > 0:
            legs["bm25"] = snapshot.keyword.search(terms, n, mask)
        if weights.get("dense", 0) > 0:
            legs["dense"] = snapshot.dense.search(self.embedder.embed([query])[0], n, mask)
        per_leg = {name: dict(results) for name, results in legs.items()}
        share = self.cfg.sentence_share
        if share > 0 and "bm25" in legs and query_language(query) == "en":
            # The keyword leg becomes a blend of whole-chunk and best-sentence BM25; hits still
            # show the whole-chunk score as "bm25".
            rows = list(dict.fromkeys(row for results in legs.values() for row, _ in results))
            sentences = self.best_sentences(snapshot, rows, terms)
            legs["bm25"] = fuse_scores({"chunk": legs["bm25"], "sentence": sentences}, {"chunk": 1 - share, "sentence": share})
        if self.cfg.fusion == "rrf":
            fused = fuse_rrf(legs, weights, self.cfg.rrf_k)
        else:
            fused = fuse_scores(legs, weights)
        hits = [
            Hit(chunk=snapshot.chunks[row], score=score,
                scores={"fused": score, **{name: scores[row] for name, scores in per_leg.items() if row in scores}})
            for row, score in fused
        ]
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits[: max(self.cfg.rerank.top_n, k)], k)
        return hits[:k]

    def best_sentences(self, snapshot: Snapshot, rows: list[int], terms: list[str]) -> list[tuple[int, float]]:
        """Each of these rows scored by its best sentence: BM25 with the sentences of these rows as
        the collection (the dense leg's units, so both legs judge the same sentences). Best first."""
        units: list[list[str]] = []
        owners: list[int] = []
        for row in rows:
            sentences = self._terms_of(snapshot.chunks[row])
            units.extend(sentences)
            owners.extend([row] * len(sentences))
        if not units:
            return []
        index = Bm25Index(k1=1.2)
        index.add(units)
        best: dict[int, float] = {}
        for row, score in zip(owners, index.scores(terms).tolist()):
            if score > best.get(row, 0.0):
                best[row] = score
        return sorted(best.items(), key=lambda pair: -pair[1])

    def _terms_of(self, chunk: Chunk) -> list[list[str]]:
        cached = self._sentence_terms.get(chunk.chunk_id)
        if cached is None:
            if len(self._sentence_terms) >= _SENTENCE_CACHE:
                self._sentence_terms.clear()
            cached = self._sentence_terms[chunk.chunk_id] = [analyze(unit) for unit in dense_units(chunk)]
        return cached
