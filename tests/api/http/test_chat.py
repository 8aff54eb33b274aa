"""/v1/chat/completions driven by the official `openai` client, unchanged: the answer and its
citations equal /v1/ask's, whole or streamed (over a real uvicorn server on 127.0.0.1), in any
collection; errors arrive as the client's own exception types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from citekb.generation import factory
from citekb.ingest.errors import ModelError

from api_contract import DOCX_QUESTION, MD_QUESTION, PDF_QUESTION, UNANSWERABLE, where
from portal_server import LEGAL_TEXT, VAULT_QUESTION, Portal, serving


def client_for(portal: Portal, key: str, collection: str | None = None, base: str = "http://testserver") -> openai.OpenAI:
    path = "/v1" if collection is None else f"/v1/collections/{collection}"
    # The app's TestClient is an httpx.Client: the openai client sends its requests through it.
    http_client = portal.client if base == "http://testserver" else None
    return openai.OpenAI(base_url=base + path, api_key=portal.keys[key], http_client=http_client, max_retries=0)


def ask(portal: Portal, key: str, question: str, collection: str | None = None) -> dict[str, Any]:
    path = "/v1/ask" if collection is None else f"/v1/collections/{collection}/ask"
    response = portal.client.post(path, json={"query": question}, headers=portal.auth(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def live(portal: Portal) -> Iterator[str]:
    """The portal's app on a real HTTP server."""
    with serving(portal.client.app) as url:
        yield url


@pytest.mark.parametrize("question", [PDF_QUESTION, DOCX_QUESTION, MD_QUESTION, UNANSWERABLE])
def test_a_completion_is_the_ask_answer_with_its_citations(portal: Portal, question: str) -> None:
    completion = client_for(portal, "hr").chat.completions.create(
        model="citekb", messages=[{"role": "system", "content": "Answer from the documents."},
                                  {"role": "user", "content": question}])
    expected = ask(portal, "hr", question)
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content == expected["answer"]
    extra = completion.model_extra or {}
    assert extra["citations"] == expected["citations"] and extra["grounded"] == expected["grounded"]
    assert completion.model == "citekb" and completion.id.startswith("chatcmpl-")
    for citation in extra["citations"]:
        assert f"[{citation['n']}]" in choice.message.content


def test_the_citations_name_the_page_the_answer_is_on(portal: Portal) -> None:
    completion = client_for(portal, "hr").chat.completions.create(
        model="citekb", messages=[{"role": "user", "content": PDF_QUESTION}])
    [first, *_] = (completion.model_extra or {})["citations"]
    assert where(first) == ("field_guide.pdf", 2, 2, None, None, "Acme Pump Field Guide > 2. Maintenance")
    assert "every 45 days" in (completion.choices[0].message.content or "")


@pytest.mark.parametrize("question", [PDF_QUESTION, MD_QUESTION, UNANSWERABLE])
def test_a_streamed_completion_sends_the_answer_then_the_citations(portal: Portal, live: str, question: str) -> None:
    client = client_for(portal, "hr", base=live)
    chunks = list(client.chat.completions.create(model="citekb", stream=True,
                                                 messages=[{"role": "user", "content": question}]))
    expected = ask(portal, "hr", question)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == expected["answer"]
    *body, last = chunks
    assert last.choices[0].finish_reason == "stop" and not last.choices[0].delta.content
    assert all(c.choices[0].finish_reason is None and "citations" not in (c.model_extra or {}) for c in body)
    assert (last.model_extra or {})["citations"] == expected["citations"]
    assert (last.model_extra or {})["grounded"] == expected["grounded"]
    assert len({c.id for c in chunks}) == 1


def test_the_stream_is_server_sent_events_ending_in_done(portal: Portal) -> None:
    body = {"model": "x", "stream": True, "messages": [{"role": "user", "content": PDF_QUESTION}]}
    with portal.client.stream("POST", "/v1/chat/completions", json=body, headers=portal.auth("reader")) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_a_collection_is_a_base_url(portal: Portal, live: str) -> None:
    completion = client_for(portal, "legal", "legal").chat.completions.create(
        model="citekb", messages=[{"role": "user", "content": VAULT_QUESTION}])
    assert LEGAL_TEXT in (completion.choices[0].message.content or "")
    assert {c["source"] for c in (completion.model_extra or {})["citations"]} == {"vault.md"}
    streamed = client_for(portal, "legal", "legal", base=live).chat.completions.create(
        model="citekb", stream=True, messages=[{"role": "user", "content": VAULT_QUESTION}])
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == completion.choices[0].message.content


def test_the_question_is_the_last_user_message_in_any_content_form(portal: Portal) -> None:
    completion = client_for(portal, "hr").chat.completions.create(model="citekb", messages=[
        {"role": "user", "content": DOCX_QUESTION},
        {"role": "assistant", "content": "Directors approve those trips [1]."},
        {"role": "user", "content": [{"type": "text", "text": PDF_QUESTION}]},
    ], temperature=0.2, max_tokens=100)
    assert completion.choices[0].message.content == ask(portal, "hr", PDF_QUESTION)["answer"]


def test_models_lists_citekb(portal: Portal) -> None:
    assert [m.id for m in client_for(portal, "reader").models.list()] == ["citekb"]


def test_errors_are_the_clients_own_exceptions(portal: Portal, live: str) -> None:
    client = client_for(portal, "reader")
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="citekb", messages=[{"role": "system", "content": "hello"}])
    # citekb's one error shape, {"error": "..."}: the client keeps its message as .body.
    assert raised.value.body == "messages: the last user message (the question) is missing or empty"
    with pytest.raises(openai.PermissionDeniedError):
        client_for(portal, "reader", "legal").chat.completions.create(model="citekb", messages=[{"role": "user", "content": "hi"}])
    bad = openai.OpenAI(base_url=live + "/v1", api_key="ckb_not_a_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="citekb", messages=[{"role": "user", "content": PDF_QUESTION}])
    with pytest.raises(openai.AuthenticationError):
        list(bad.chat.completions.create(model="citekb", stream=True, messages=[{"role": "user", "content": PDF_QUESTION}]))


def test_an_unknown_backend_is_a_400_before_the_stream_starts(portal: Portal) -> None:
    body = {"model": "citekb", "stream": True, "backend": "nosuch", "messages": [{"role": "user", "content": PDF_QUESTION}]}
    response = portal.client.post("/v1/chat/completions", json=body, headers=portal.auth("reader"))
    assert response.status_code == 400 and "unknown answer backend 'nosuch'" in response.json()["error"]


class FailingGenerator:
    """Writes one delta, then fails the way a remote model can half-way through an answer."""

    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def answer(self, question: str, hits: Any) -> Any:
        raise self.error

    def stream(self, question: str, hits: Any) -> Iterator[Any]:
        yield "The answer starts"
        raise self.error


@pytest.mark.parametrize(("error", "message"), [
    (RuntimeError("socket closed"), "internal server error"),
    (ModelError("the answer model timed out"), "the answer model timed out"),
])
def test_a_failure_mid_stream_is_an_error_event_the_client_raises(
        portal: Portal, live: str, monkeypatch: pytest.MonkeyPatch, error: Exception, message: str) -> None:
    monkeypatch.setitem(factory.GENERATORS, "failing", lambda cfg, embedder: FailingGenerator(error))  # type: ignore[index]
    stream = client_for(portal, "reader", base=live).chat.completions.create(
        model="citekb", stream=True, messages=[{"role": "user", "content": PDF_QUESTION}], extra_body={"backend": "failing"})
    received = []
    with pytest.raises(openai.APIError, match=message) as raised:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert raised.value.type == "server_error"
    assert "".join(received) == "The answer starts"  # what came before the failure, and no [DONE]
