"""Backends through KnowledgeBase: one setting picks the backend (per request too), and every
answer is verified before it leaves ask or ask_stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from citekb.api.http.schemas import AskResponse
from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings
from citekb.generation.answer import Answer
from citekb.ingest.sentences import split_sentences

from fake_openai import FakeOpenAIServer, passages_of
from fakes import HashEmbedder

QUESTION = "How often should the intake filter be replaced?"


def right_and_wrong(body: dict[str, Any]) -> str:
    """The longest sentence of passage 1 cited right, then again cited to a passage that lacks it."""
    passages = passages_of(body)
    first = passages[1]
    sentence = max((first[a:b] for a, b in split_sentences(first)), key=len)
    wrong = next(n for n, text in passages.items() if sentence not in text)
    return f"{sentence} [1] {sentence} [{wrong}]"


def make_kb(index: Path, **settings: Any) -> KnowledgeBase:
    return KnowledgeBase(Settings(index=index, embedding_model="test/hash-embedder", **settings), embedder=HashEmbedder())


@pytest.fixture
def server() -> Any:
    with FakeOpenAIServer(right_and_wrong) as fake:
        yield fake


@pytest.mark.parametrize("per_request", [False, True])
def test_openai_answers_are_verified_and_wrong_citations_flagged(tmp_path: Path, corpus_dir: Path, server: FakeOpenAIServer,
                                                                 per_request: bool) -> None:
    backend = {"answer_backend": "extractive"} if per_request else {"answer_backend": "openai"}
    kb = make_kb(tmp_path / "idx", openai_base_url=server.base_url, openai_model="fake", **backend)
    kb.ingest([corpus_dir])
    out = AskResponse.from_answer(kb.ask(QUESTION, backend="openai" if per_request else None))
    assert len(server.requests) == 1
    assert [(s.citations, s.supported) for s in out.sentences] == [([1], True), ([2], False)]
    assert [s.text for s in out.sentences] == [out.answer[s.start:s.end] for s in out.sentences]
    # The supported citation is narrowed to the one sentence it quotes.
    assert out.citations[0].text == out.sentences[0].text.removesuffix(" [1]")


def test_drop_mode_keeps_only_supported_sentences(tmp_path: Path, corpus_dir: Path, server: FakeOpenAIServer) -> None:
    kb = make_kb(tmp_path / "idx", answer_backend="openai", openai_base_url=server.base_url, openai_model="fake",
                 verify_mode="drop")
    kb.ingest([corpus_dir])
    answer = kb.ask(QUESTION)
    assert [c.n for c in answer.citations] == [1]
    assert answer.text == f"{answer.citations[0].quote} [1]"
    assert [s.supported for s in answer.sentences] == [True]


def test_ask_stream_ends_with_the_verified_answer(tmp_path: Path, corpus_dir: Path, server: FakeOpenAIServer) -> None:
    kb = make_kb(tmp_path / "idx", answer_backend="openai", openai_base_url=server.base_url, openai_model="fake")
    kb.ingest([corpus_dir])
    *deltas, answer = list(kb.ask_stream(QUESTION))
    assert isinstance(answer, Answer) and "".join(deltas) == answer.text  # flag mode: the text is kept
    assert [s.supported for s in answer.sentences] == [True, False]
    assert answer == kb.ask(QUESTION)


def test_cli_ask_picks_the_backend_and_verify_mode(tmp_path: Path, corpus_dir: Path, server: FakeOpenAIServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from click.testing import CliRunner

    from citekb.api.cli import cli
    from citekb.retrieval import factory

    for name in list(os.environ):
        if name.startswith("CITEKB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CITEKB_EMBEDDING_MODEL", "test/hash-embedder")
    monkeypatch.setenv("CITEKB_OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("CITEKB_OPENAI_MODEL", "fake")
    monkeypatch.setitem(factory.EMBEDDERS, "test/hash-embedder", lambda precision: HashEmbedder())  # type: ignore[index]
    index = tmp_path / "idx"
    make_kb(index).ingest([corpus_dir])

    def ask(*extra: str) -> Any:
        result = CliRunner().invoke(cli, ["ask", QUESTION, "--index", str(index), *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        return result

    flagged = json.loads(ask("--backend", "openai", "--json").stdout)
    assert [(s["citations"], s["supported"]) for s in flagged["sentences"]] == [([1], True), ([2], False)]
    dropped = json.loads(ask("--backend", "openai", "--verify", "drop", "--json").stdout)
    assert [s["supported"] for s in dropped["sentences"]] == [True] and len(dropped["citations"]) == 1
    text = ask("--backend", "openai")
    assert "unsupported by its citations:" in text.stderr
    extractive = json.loads(ask("--json").stdout)  # the default backend: no request to the server
    assert len(server.requests) == 3 and extractive["grounded"]
