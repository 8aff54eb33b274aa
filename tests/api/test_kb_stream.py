"""ask_stream: text deltas, then the finished Answer, equal to ask's."""

from __future__ import annotations

from pathlib import Path

from citekb.api.kb import KnowledgeBase
from citekb.generation.answer import Answer

from api_contract import PDF_QUESTION


def test_ask_stream_ends_with_the_same_answer_as_ask(kb: KnowledgeBase, corpus_dir: Path) -> None:
    kb.ingest([corpus_dir])
    question = PDF_QUESTION
    items = list(kb.ask_stream(question))
    assert isinstance(items[-1], Answer)
    deltas = items[:-1]
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == items[-1].text
    assert items[-1].citations
    assert items[-1] == kb.ask(question)
