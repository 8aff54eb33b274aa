"""Generators by config name: a constant table, not registration at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from citekb.ingest.errors import ConfigError

from .base import Generator
from .config import GenerationConfig
from .extractive import ExtractiveGenerator

GENERATORS: Mapping[str, Callable[[GenerationConfig], Generator]] = {
    "extractive": lambda cfg: ExtractiveGenerator.from_config(cfg.extractive),
}


def make_generator(cfg: GenerationConfig, backend: str | None = None) -> Generator:
    name = backend or cfg.backend
    try:
        build = GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown answer backend {name!r}; choose one of {sorted(GENERATORS)}") from None
    return build(cfg)
