"""The Generator contract: turn a question and its retrieved hits into a cited answer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


def stream_answer(generator: Generator, question: str, hits: Sequence[Hit]) -> Iterator[str | Answer]:
    """Text deltas of the answer as they are written, then the finished Answer (last item).
    Backends that write token by token define ``stream`` with this contract; for the others
    the whole text comes as one delta."""
    stream = getattr(generator, "stream", None)
    if stream is not None:
        yield from stream(question, hits)
        return
    answer = generator.answer(question, hits)
    yield answer.text
    yield answer
