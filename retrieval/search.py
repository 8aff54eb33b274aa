"""Hybrid search: BM25 and dense legs over one snapshot, fused (fusion.py), then reranked."""

from __future__ import annotations

import logging
import threading

import numpy as np

from citekb.ingest.document import Chunk
from citekb.ingest.errors import ConfigError

from .analyze import analyze, query_language
from .config import RetrievalConfig
from .embed import Embedder
from .fusion import fuse_rrf, fuse_scores
from .hit import Hit
from .indexing import dense_units
from .keyword import unit_scores
from .rerank import Reranker
from .store import Snapshot

log = logging.getLogger(__name__)

_SENTENCE_CACHE = 200_000  # chunks whose sentence terms are kept between queries


class HybridSearcher:
    def __init__(self, embedder: Embedder, cfg: RetrievalConfig, reranker: Reranker | None = None) -> None:
        self.embedder = embedder
        self.cfg = cfg
        self.reranker = reranker
        # chunk_id -> its sentences' terms as ids (concatenated) and each sentence's term count
        self._sentence_terms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._term_ids: dict[str, int] = {}  # kept while the searcher lives: a few bytes per term
        self._cache_lock = threading.Lock()

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
            top = self.cfg.sentence_rows
            rows = list(dict.fromkeys(row for results in legs.values() for row, _ in results[:top]))
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
            # Only the fused top-N are rescored (the reranker is the slow stage); hits past them
            # keep their fused order and score, after the rescored ones.
            top = self.cfg.rerank.top_n
            hits = self.reranker.rerank(query, hits[:top], top) + hits[top:]
        return hits[:k]

    def best_sentences(self, snapshot: Snapshot, rows: list[int], terms: list[str]) -> list[tuple[int, float]]:
        """Each of these rows scored by its best sentence: BM25 with the sentences of these rows as
        the collection (the dense leg's units, so both legs judge the same sentences). Best first.
        The scores are those of a Bm25Index(k1=1.2) built over the sentences, to the bit."""
        sentences = [self._terms_of(snapshot.chunks[row]) for row in rows]
        lengths = np.concatenate([lens for _, lens in sentences]) if sentences else np.zeros(0, np.int64)
        if not len(lengths):
            return []
        ids = np.concatenate([term_ids for term_ids, _ in sentences])
        query = [self._term_ids[term] for term in terms if term in self._term_ids]  # others are in no sentence
        scores = unit_scores(ids, lengths, query, k1=1.2)
        counts = np.array([len(lens) for _, lens in sentences])
        starts = np.cumsum(counts) - counts
        filled = counts > 0
        best_units = np.zeros(len(rows), np.float32)
        best_units[filled] = np.maximum.reduceat(scores, starts[filled])
        best: dict[int, float] = {}
        for row, score in zip(rows, best_units.tolist()):
            if score > best.get(row, 0.0):
                best[row] = score
        return sorted(best.items(), key=lambda pair: -pair[1])

    def _terms_of(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        """The analysed terms of the chunk's sentences as ids (self._term_ids), concatenated,
        and each sentence's term count."""
        cached = self._sentence_terms.get(chunk.chunk_id)
        if cached is None:
            analysed = [analyze(unit) for unit in dense_units(chunk)]
            with self._cache_lock:
                if len(self._sentence_terms) >= _SENTENCE_CACHE:
                    self._sentence_terms.clear()
                ids = [self._term_ids.setdefault(term, len(self._term_ids)) for terms in analysed for term in terms]
                cached = (np.array(ids, np.int64), np.array([len(terms) for terms in analysed], np.int64))
                self._sentence_terms[chunk.chunk_id] = cached
        return cached
