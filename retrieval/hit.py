"""What a search returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from citekb.ingest.document import Chunk


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # the score this list is sorted by
    scores: Mapping[str, float] = field(default_factory=dict)  # each stage's own: "bm25", "dense", "rrf", "rerank"
