"""KnowledgeBases on HashEmbedder for each retrieval backend, in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings
from fakes import HashEmbedder

BACKENDS = ["faiss", "milvus"]


def make_kb(backend: str, root: Path, languages: tuple[str, ...] = ("en", "zh"), **overrides: object) -> KnowledgeBase:
    if backend == "milvus":
        pytest.importorskip("pymilvus", reason="the milvus backend needs pymilvus and milvus-lite")
        pytest.importorskip("milvus_lite", reason="the milvus backend's tests run on milvus-lite")
    embedder = HashEmbedder(languages=languages)
    settings = Settings(index=root / "index", embedding_model=embedder.model_id, backend=backend, **overrides)  # type: ignore[arg-type]
    return KnowledgeBase(settings, embedder=embedder)
