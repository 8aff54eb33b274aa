"""Hybrid search: BM25 and dense legs over one snapshot, fused by weighted RRF, then reranked."""

from __future__ import annotations

import logging

import numpy as np

from citekb.ingest.errors import ConfigError

from .analyze import analyze, query_language
from .config import RetrievalConfig
from .embed import Embedder
from .fusion import fuse_rrf, fuse_scores
from .hit import Hit
from .rerank import Reranker
from .store import Snapshot

log = logging.getLogger(__name__)


class HybridSearcher:
    def __init__(self, embedder: Embedder, cfg: RetrievalConfig, reranker: Reranker | None = None) -> None:
        self.embedder = embedder
        self.cfg = cfg
        self.reranker = reranker

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
        if weights.get("bm25", 0) > 0:
            legs["bm25"] = snapshot.keyword.search(analyze(query), n, mask)
        if weights.get("dense", 0) > 0:
            legs["dense"] = snapshot.dense.search(self.embedder.embed([query])[0], n, mask)
        per_leg = {name: dict(results) for name, results in legs.items()}
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
