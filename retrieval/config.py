"""Configuration of retrieval."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from citekb.ingest.errors import ConfigError

from .embed import Precision


@dataclass(frozen=True, slots=True)
class RerankConfig:
    backend: str = "none"  # "none" | "cross-encoder"; no cross-encoder weights ship, so none is the default
    model_dir: Path | None = None
    # Only the fused top-N are rescored: the cross-encoder is the slow stage, ~15 ms a 64-token
    # window on 2 cores. 5 keeps search + rerank at 100k chunks within 150 ms p95 there
    # (docs/benchmarks.md); raise it on faster machines or for a stronger model.
    top_n: int = 5
    batch_size: int = 32
    # How the cross-encoder's verdict is used. None: its scores alone order the top-N. A number w:
    # each hit scores fused / best fused + w * its reranker score min-max scaled over the top-N,
    # so a model that is good but not better than the fused ranking only settles near-ties.
    mix: float | None = None
    precision: Precision = "auto"  # of the cross-encoder's arithmetic (embed.torch_dtype)

    def __post_init__(self) -> None:
        if self.top_n < 1 or self.batch_size < 1:
            raise ConfigError("rerank top_n and batch_size must be at least 1")
        if self.mix is not None and self.mix < 0:
            raise ConfigError(f"rerank mix must be at least 0, got {self.mix}")


@dataclass(frozen=True, slots=True)
class DenseIndexConfig:
    """When the directory index's dense leg stops searching exhaustively (dense.py)."""

    # From this many sentence vectors on, an IVF index (fp16 codes) replaces the exact flat one;
    # 0: always exact. Below it search is exhaustive and exact (qa: 2.3k vectors, SciFact: ~50k).
    ann_min_vectors: int = 200_000
    # IVF lists searched per query; None: chosen from the number of lists (dense.default_nprobe).
    nprobe: int | None = None

    def __post_init__(self) -> None:
        if self.ann_min_vectors < 0 or 0 < self.ann_min_vectors < 1_000:
            raise ConfigError(f"ann_min_vectors must be 0 (always exact search) or at least 1000, got {self.ann_min_vectors}")
        if self.nprobe is not None and self.nprobe < 1:
            raise ConfigError(f"ann nprobe must be at least 1, got {self.nprobe}")


@dataclass(frozen=True, slots=True)
class RetrievalConfig:
    # Weight of each leg in reciprocal rank fusion. The dense leg only counts for queries in a
    # language its model understands (Embedder.languages): MiniLM is English-only, and fusing
    # it into Chinese queries made them worse than BM25 alone.
    weights: dict[str, float] = field(default_factory=lambda: {"bm25": 1.0, "dense": 1.0})
    fusion: str = "score"  # "score" | "rrf" (fusion.py says why score is the default)
    candidates: int = 100  # each leg is asked for this many before fusion
    # Share of the keyword leg given to a candidate chunk's best single sentence (BM25 over the
    # candidates' sentences) rather than to the whole chunk, for English queries: the dense leg
    # already scores by the best sentence. On ../shared/data/qa it ranks the right page first for
    # 86.8% of English questions where whole-chunk BM25 does for 85.7%; 0.5 gains a little more
    # there but costs SciFact 0.006 nDCG@10 (docs/benchmarks.md, "English hit@1").
    sentence_share: float = 0.3
    # Only each leg's best sentence_rows candidates get a best-sentence score: analysing the
    # sentences of a chunk not seen before is what the blend costs (~0.1 ms a chunk; 9 ms a
    # query at 100 a leg). On ../shared/data/qa, English hit@1 is 0.870 with 20, 0.868 with 100.
    sentence_rows: int = 20
    rrf_k: int = 60
    rerank: RerankConfig = RerankConfig()
    dense: DenseIndexConfig = DenseIndexConfig()

    def __post_init__(self) -> None:
        unknown = set(self.weights) - {"bm25", "dense"}
        if unknown:
            raise ConfigError(f"unknown retrieval legs {sorted(unknown)}; choose from bm25, dense")
        if any(w < 0 for w in self.weights.values()) or not any(w > 0 for w in self.weights.values()):
            raise ConfigError(f"retrieval weights must be >= 0 with at least one > 0, got {self.weights}")
        if self.fusion not in ("score", "rrf"):
            raise ConfigError(f"unknown fusion {self.fusion!r}; choose score or rrf")
        if not 0 <= self.sentence_share <= 1:
            raise ConfigError(f"retrieval sentence_share must be between 0 and 1, got {self.sentence_share}")
        if self.candidates < 1 or self.rrf_k < 1 or self.sentence_rows < 1:
            raise ConfigError("retrieval candidates, rrf_k and sentence_rows must be at least 1")
