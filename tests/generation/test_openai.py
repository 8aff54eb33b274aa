"""The openai backend against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from citekb.generation.answer import Answer
from citekb.generation.backends.openai import OpenAIGenerator
from citekb.generation.base import NOT_FOUND, stream_answer
from citekb.generation.config import OpenAIConfig, VerifyConfig
from citekb.generation.verify import verify
from citekb.ingest.errors import ConfigError, ModelError

from fake_openai import FakeOpenAIServer, passages_of, question_of
from sample_hits import ENTITLEMENT, HITS, handbook, security

QUESTION = "How many days of paid annual leave do full-time employees get?"
REPLY = "Full-time employees get 27 days of paid annual leave per year [1]. Passwords need sixteen characters [2][9]."


def generator(server: FakeOpenAIServer, **kwargs: Any) -> OpenAIGenerator:
    return OpenAIGenerator(OpenAIConfig(base_url=server.base_url, model="fake-7b", retry_backoff_s=0.0, **kwargs))


def test_passages_are_numbered_and_markers_become_citations() -> None:
    with FakeOpenAIServer(lambda body: REPLY) as server:
        answer = generator(server, api_key="sk-test").answer(QUESTION, HITS)
    [request] = server.requests
    assert request["authorization"] == "Bearer sk-test"
    assert request["body"]["model"] == "fake-7b" and request["body"]["stream"] is False
    assert passages_of(request["body"]) == {1: handbook().text, 2: security().text}
    assert question_of(request["body"]) == QUESTION
    # [9] names no passage that was given: dropped.
    assert answer.text == "Full-time employees get 27 days of paid annual leave per year [1]. Passwords need sixteen characters [2]."
    assert [(c.n, c.chunk_id, c.quote) for c in answer.citations] == [(1, "hb:4", handbook().text), (2, "sec:1", security().text)]
    assert answer.grounded


def test_citations_are_numbered_in_the_order_the_model_cites_passages() -> None:
    with FakeOpenAIServer(lambda body: "Passwords need sixteen characters [2]. Leave is 27 days [1][2].") as server:
        answer = generator(server).answer(QUESTION, HITS)
    assert answer.text == "Passwords need sixteen characters [1]. Leave is 27 days [2][1]."
    assert [c.chunk_id for c in answer.citations] == ["sec:1", "hb:4"]


def test_stream_yields_rewritten_deltas_then_the_same_answer() -> None:
    with FakeOpenAIServer(lambda body: REPLY, chunk_chars=2) as server:
        items = list(stream_answer(generator(server), QUESTION, HITS))
        plain = generator(server).answer(QUESTION, HITS)
    assert server.requests[0]["body"]["stream"] is True
    *deltas, answer = items
    assert len(deltas) > 10 and all(isinstance(d, str) for d in deltas)
    assert isinstance(answer, Answer) and "".join(deltas) == answer.text
    assert answer == plain


def test_verification_catches_a_wrong_citation_from_the_model() -> None:
    reply = "Full-time employees get 27 days of paid annual leave per year [2]."
    with FakeOpenAIServer(lambda body: reply) as server:
        answer = generator(server).answer(QUESTION, HITS)
    assert [s.supported for s in verify(answer, None).sentences] == [False]
    assert verify(answer, None, VerifyConfig(mode="drop")).grounded is False
    with FakeOpenAIServer(lambda body: reply.replace("[2]", "[1]")) as server:
        right = verify(generator(server).answer(QUESTION, HITS), None)
    assert [s.supported for s in right.sentences] == [True]
    assert right.citations[0].quote == ENTITLEMENT
    assert right.citations[0].locator.page == 4


@pytest.mark.parametrize("reply", ["NOT IN DOCUMENTS", " not in documents. ", ""])
def test_the_model_saying_it_does_not_know_is_not_found(reply: str) -> None:
    with FakeOpenAIServer(lambda body: reply) as server:
        answer = generator(server).answer(QUESTION, HITS)
    assert (answer.text, answer.citations, answer.grounded) == (NOT_FOUND, (), False)


def test_no_hits_means_no_request() -> None:
    with FakeOpenAIServer(lambda body: REPLY) as server:
        answer = generator(server).answer(QUESTION, [])
    assert not answer.grounded and server.requests == []


def test_a_failing_endpoint_is_retried_then_reported() -> None:
    with FakeOpenAIServer(lambda body: REPLY, mode="error") as server:
        with pytest.raises(ModelError, match=r"is not answering after 3 attempt\(s\): HTTP 500: the model crashed"):
            generator(server, retries=2).answer(QUESTION, HITS)
    assert len(server.requests) == 3


def test_a_passing_failure_is_retried_away() -> None:
    with FakeOpenAIServer(lambda body: REPLY, fail_first=2) as server:
        answer = generator(server, retries=2).answer(QUESTION, HITS)
    assert len(server.requests) == 3 and answer.grounded


def test_a_refusal_is_not_retried() -> None:
    with FakeOpenAIServer(lambda body: REPLY, mode="unauthorized") as server:
        with pytest.raises(ModelError, match="refused the request: HTTP 401: invalid api key"):
            generator(server, retries=2).answer(QUESTION, HITS)
    assert len(server.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_garbage_from_the_endpoint_is_a_model_error(stream: bool) -> None:
    with FakeOpenAIServer(lambda body: REPLY, mode="garbage") as server:
        with pytest.raises(ModelError, match="not JSON"):
            if stream:
                list(generator(server).stream(QUESTION, HITS))
            else:
                generator(server).answer(QUESTION, HITS)


def test_a_down_endpoint_is_a_clear_error() -> None:
    with FakeOpenAIServer(lambda body: REPLY) as server:
        url = server.base_url  # the port is free again once the server is gone
    with pytest.raises(ModelError, match=r"openai endpoint http://127\.0\.0\.1:\d+/v1/chat/completions is not answering "
                                         r"after 2 attempt\(s\): cannot connect"):
        OpenAIGenerator(OpenAIConfig(base_url=url, model="m", retries=1, retry_backoff_s=0.0)).answer(QUESTION, HITS)


def test_a_slow_endpoint_times_out() -> None:
    import threading

    release = threading.Event()

    def slow(body: dict[str, Any]) -> str:
        release.wait(5)
        return REPLY

    with FakeOpenAIServer(slow) as server:
        try:
            with pytest.raises(ModelError, match=r"no reply within 0\.2 s"):
                generator(server, timeout_s=0.2, retries=0).answer(QUESTION, HITS)
        finally:
            release.set()


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="CITEKB_OPENAI_MODEL"):
        OpenAIGenerator(OpenAIConfig())
    with pytest.raises(ConfigError, match="must start with http"):
        OpenAIConfig(base_url="localhost:11434", model="m")
