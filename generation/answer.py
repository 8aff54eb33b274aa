"""What a generator returns: answer text with [n] markers and the citation behind each, and,
once verified (generation.verify), whether each sentence's citations support it."""

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
class SentenceSupport:
    """One sentence of Answer.text and how well the passages it cites back it."""

    start: int  # [start, end) in Answer.text, its [n] markers included
    end: int
    citations: tuple[int, ...]  # the [n] markers the sentence carries, in order
    supported: bool  # False: no citation, or a cited passage does not say this
    score: float  # the weakest of its citations' support scores in [0, 1]; 0 without citations


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    grounded: bool  # False: "not in the documents"; never an invented answer
    # Filled by verification, one per sentence of text; empty when the answer was not verified
    # or is not grounded.
    sentences: tuple[SentenceSupport, ...] = ()
