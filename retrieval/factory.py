"""Retrieval parts by config name: a constant table, not registration at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from citekb.ingest.errors import ConfigError

from .config import RerankConfig
from .embed import MINILM_ID, Embedder, SentenceTransformerEmbedder, minilm_path
from .rerank import CrossEncoderReranker, Reranker

EMBEDDERS: Mapping[str, Callable[[], Embedder]] = {
    MINILM_ID: lambda: SentenceTransformerEmbedder(minilm_path(), MINILM_ID, languages=("en",)),
}

RERANKERS: Mapping[str, Callable[[RerankConfig], Reranker]] = {
    "cross-encoder": CrossEncoderReranker.from_config,
}


def make_embedder(model_id: str) -> Embedder:
    try:
        build = EMBEDDERS[model_id]
    except KeyError:
        raise ConfigError(f"unknown embedding model {model_id!r}; choose one of {sorted(EMBEDDERS)}") from None
    return build()


def make_reranker(cfg: RerankConfig) -> Reranker | None:
    """None when reranking is off ("none")."""
    if cfg.backend == "none":
        return None
    try:
        build = RERANKERS[cfg.backend]
    except KeyError:
        raise ConfigError(f"unknown reranker {cfg.backend!r}; choose one of {sorted(RERANKERS)} or none") from None
    return build(cfg)
