"""What a generator returns: answer text with [n] markers and the citation behind each."""

from __future__ import annotations

from dataclasses import dataclass

from citekb.ingest.document import Locator
from citekb.retrieval.hit import Hit


@dataclass(frozen=True, slots=True)
class Citation:
    n: int  # the [n] marker in Answer.text
    chunk_id: str
    locator: Locator  # narrowed to the quoted sentence's page and lines
    quote: str


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    grounded: bool  # False: "not in the documents"; never an invented answer
