"""Configuration of answer generation."""

from __future__ import annotations

from dataclasses import dataclass

from citekb.ingest.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ExtractiveConfig:
    top_chunks: int = 3  # sentences are picked from this many of the best hits
    max_sentences: int = 1  # a second sentence cost 2 points of cited-page precision on ../shared/data/qa
    # A second sentence joins the answer only if it scores this close to the best one.
    keep_ratio: float = 0.85
    # Below this share of the question's term weight, nothing answers it: say so instead.
    min_support: float = 0.25
    semantic_weight: float = 1.0  # weight of the embedder's cosine beside the term overlap
    # A sentence this close in meaning answers even when it shares few of the question's words.
    min_similarity: float = 0.5
    # ...and a sentence with enough shared terms must still be at least this close in meaning
    # ("Who won the 1998 world cup?" shares "won" and "cup" with many an unrelated sentence).
    min_related: float = 0.25

    def __post_init__(self) -> None:
        if self.top_chunks < 1 or self.max_sentences < 1:
            raise ConfigError("extractive top_chunks and max_sentences must be at least 1")
        if self.semantic_weight < 0:
            raise ConfigError("extractive semantic_weight must be >= 0")
        if not (0 < self.keep_ratio <= 1 and 0 <= self.min_support < 1 and -1 <= self.min_similarity <= 1
                and -1 <= self.min_related <= 1):
            raise ConfigError("extractive keep_ratio must be in (0, 1] and min_support in [0, 1)")


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    backend: str = "extractive"
    extractive: ExtractiveConfig = ExtractiveConfig()
