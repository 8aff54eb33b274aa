"""Rerankers rescore the fused candidates with a model that reads query and passage together."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from citekb.ingest.errors import ModelError

from .config import RerankConfig
from .hit import Hit


class Reranker(Protocol):
    name: str

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        """At most k hits, best first; each keeps its earlier scores and gains scores["rerank"]."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local model directory."""

    name = "cross-encoder"

    def __init__(self, model_dir: Path, batch_size: int = 32) -> None:
        if not (model_dir / "config.json").is_file():
            raise ModelError(f"no reranker model in {model_dir}: expected a local model directory with config.json")
        os.environ["HF_HUB_OFFLINE"] = "1"  # a local directory only; never a hub download
        from sentence_transformers import CrossEncoder

        try:
            self._model = CrossEncoder(str(model_dir), device="cpu", local_files_only=True)
        except Exception as exc:  # a damaged directory raises anything from OSError to safetensors errors
            raise ModelError(f"cannot load reranker model from {model_dir}: {exc}") from exc
        self._batch_size = batch_size

    @classmethod
    def from_config(cls, cfg: RerankConfig) -> CrossEncoderReranker:
        if cfg.model_dir is None:
            raise ModelError("the cross-encoder reranker needs a model directory (rerank model_dir)")
        return cls(Path(cfg.model_dir), batch_size=cfg.batch_size)

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict([(query, h.chunk.text) for h in hits], batch_size=self._batch_size,
                                     show_progress_bar=False, convert_to_numpy=True)
        rescored = [replace(h, score=float(s), scores={**h.scores, "rerank": float(s)}) for h, s in zip(hits, scores)]
        rescored.sort(key=lambda h: -h.score)
        return rescored[:k]
