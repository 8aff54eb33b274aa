"""The Generator contract: turn a question and its retrieved hits into a cited answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from citekb.retrieval.hit import Hit

from .answer import Answer

NOT_FOUND = "The documents do not answer this question."


class Generator(Protocol):
    name: str

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        """An answer whose every [n] names a Citation of one of hits; grounded=False with
        NOT_FOUND-style text when the hits do not answer the question."""
        ...
