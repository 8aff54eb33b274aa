"""Generators by config name: a constant table, not registration at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

from citekb.ingest.errors import ConfigError
from citekb.retrieval.embed import Embedder

from .base import Generator
from .config import ExtractiveConfig, GenerationConfig, OpenAIConfig, TinyLLMConfig, TransformersConfig
from .extractive import ExtractiveGenerator


# A KnowledgeBase asks for its generator on every question: the backends that load a model or
# hold a connection pool are built once per configuration.
@lru_cache(maxsize=4)
def _openai(cfg: OpenAIConfig) -> Generator:
    from .backends.openai import OpenAIGenerator

    return OpenAIGenerator.from_config(cfg)


@lru_cache(maxsize=2)
def _transformers(cfg: TransformersConfig) -> Generator:
    from .backends.transformers import TransformersGenerator

    return TransformersGenerator.from_config(cfg)


def _tinyllm(cfg: TinyLLMConfig, embedder: Embedder | None, chooser: ExtractiveConfig) -> Generator:
    from .tinylm.generator import TinyLMGenerator  # torch model code loads only when asked for

    # Checkpoints are cached by directory inside; the embedder and the extractive backend's
    # chooser settings rank the evidence sentences as the extractive backend ranks them.
    return TinyLMGenerator.from_config(cfg, embedder, chooser)


GENERATORS: Mapping[str, Callable[[GenerationConfig, Embedder | None], Generator]] = {
    "extractive": lambda cfg, embedder: ExtractiveGenerator.from_config(cfg.extractive, embedder),
    "openai": lambda cfg, embedder: _openai(cfg.openai),
    "transformers": lambda cfg, embedder: _transformers(cfg.transformers),
    "tinyllm": lambda cfg, embedder: _tinyllm(cfg.tinyllm, embedder, cfg.extractive),
}


def make_generator(cfg: GenerationConfig, backend: str | None = None, embedder: Embedder | None = None) -> Generator:
    """The generator named by backend (else cfg.backend); embedder is the index's, for backends that use one."""
    name = backend or cfg.backend
    try:
        build = GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown answer backend {name!r}; choose one of {sorted(GENERATORS)}") from None
    return build(cfg, embedder)
