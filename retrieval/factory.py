"""Retrieval parts by config name: a constant table, not registration at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from citekb.ingest.errors import ConfigError

from .config import DenseIndexConfig, RerankConfig
from .embed import (
    MINILM_ID,
    USE_MULTILINGUAL_ID,
    Embedder,
    Precision,
    SentenceTransformerEmbedder,
    UseMultilingualEmbedder,
    minilm_path,
)
from .rerank import CrossEncoderReranker, Reranker
from .store import IndexStore

if TYPE_CHECKING:
    from .backends.config import MilvusConfig
    from .backends.milvus import MilvusStore

EMBEDDERS: Mapping[str, Callable[[Precision], Embedder]] = {
    MINILM_ID: lambda precision: SentenceTransformerEmbedder(minilm_path(), MINILM_ID, languages=("en",), precision=precision),
    USE_MULTILINGUAL_ID: lambda precision: UseMultilingualEmbedder(),  # numpy float32 only
}

RERANKERS: Mapping[str, Callable[[RerankConfig], Reranker]] = {
    "cross-encoder": CrossEncoderReranker.from_config,
}


def make_embedder(model_id: str, precision: Precision = "auto") -> Embedder:
    try:
        build = EMBEDDERS[model_id]
    except KeyError:
        raise ConfigError(f"unknown embedding model {model_id!r}; choose one of {sorted(EMBEDDERS)}") from None
    return build(precision)


def make_reranker(cfg: RerankConfig) -> Reranker | None:
    """None when reranking is off ("none")."""
    if cfg.backend == "none":
        return None
    try:
        build = RERANKERS[cfg.backend]
    except KeyError:
        raise ConfigError(f"unknown reranker {cfg.backend!r}; choose one of {sorted(RERANKERS)} or none") from None
    return build(cfg)


def make_store(backend: str, index: Path, milvus: MilvusConfig | None = None,
               dense: DenseIndexConfig | None = None) -> IndexStore | MilvusStore:
    """Where the index lives: "faiss" (the index directory, the default) or "milvus"."""
    if backend == "faiss":
        return IndexStore(index, dense)
    if backend == "milvus":
        if milvus is None:
            raise ConfigError("the milvus backend needs a Milvus configuration (CITEKB_MILVUS_URI)")
        from .backends.milvus import (
            MilvusStore,  # pymilvus is only imported when chosen
        )

        return MilvusStore(milvus)
    raise ConfigError(f"unknown retrieval backend {backend!r}; choose faiss or milvus")
