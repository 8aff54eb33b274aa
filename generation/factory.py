"""Generators by config name: a constant table, not registration at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from citekb.ingest.errors import ConfigError
from citekb.retrieval.embed import Embedder

from .base import Generator
from .config import GenerationConfig
from .extractive import ExtractiveGenerator

GENERATORS: Mapping[str, Callable[[GenerationConfig, Embedder | None], Generator]] = {
    "extractive": lambda cfg, embedder: ExtractiveGenerator.from_config(cfg.extractive, embedder),
}


def make_generator(cfg: GenerationConfig, backend: str | None = None, embedder: Embedder | None = None) -> Generator:
    """The generator named by backend (else cfg.backend); embedder is the index's, for backends that use one."""
    name = backend or cfg.backend
    try:
        build = GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown answer backend {name!r}; choose one of {sorted(GENERATORS)}") from None
    return build(cfg, embedder)
