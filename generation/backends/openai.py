"""The openai backend: any OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM,
llama.cpp server, LM Studio, DashScope compatible mode) writes the answer from numbered
passages; its [n] markers become citations of those passages."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from citekb.ingest.errors import ConfigError, ModelError
from citekb.retrieval.hit import Hit

from ..answer import Answer
from ..base import NOT_FOUND
from ..config import OpenAIConfig
from .passages import MarkerMapper, build_messages, make_answer, stream_reply

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIGenerator:
    name = "openai"

    def __init__(self, cfg: OpenAIConfig, client: httpx.Client | None = None) -> None:
        if not cfg.model:
            raise ConfigError("answer backend openai needs a model name: set CITEKB_OPENAI_MODEL (e.g. qwen2.5:7b-instruct)")
        self.cfg = cfg
        self._url = cfg.base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        self._client = client or httpx.Client(timeout=cfg.timeout_s, headers=headers)
        if client is not None:
            self._client.headers.update(headers)

    @classmethod
    def from_config(cls, cfg: OpenAIConfig) -> OpenAIGenerator:
        return cls(cfg)

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        if not hits:
            return Answer(text=NOT_FOUND, citations=(), hits=(), grounded=False)
        response = self._send(self._payload(question, hits, stream=False))
        try:
            body = _json(response, self._url)
        finally:
            response.close()
        content = _get(body, self._url, "choices", 0, "message", "content")
        if not isinstance(content, str):
            raise ModelError(f"openai endpoint {self._url} answered without text (choices[0].message.content)")
        mapper = MarkerMapper(len(hits))
        return make_answer(mapper.feed(content) + mapper.finish(), hits, mapper)

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str | Answer]:
        """Text deltas as the endpoint sends them (markers already rewritten), then the Answer."""
        if not hits:
            yield NOT_FOUND
            yield Answer(text=NOT_FOUND, citations=(), hits=(), grounded=False)
            return
        response = self._send(self._payload(question, hits, stream=True))
        try:
            yield from stream_reply(_sse_deltas(response, self._url, self.cfg.timeout_s), hits)
        finally:
            response.close()

    def _payload(self, question: str, hits: Sequence[Hit], stream: bool) -> dict[str, Any]:
        return {"model": self.cfg.model, "messages": build_messages(question, hits, self.cfg.max_passage_chars),
                "temperature": self.cfg.temperature, "max_tokens": self.cfg.max_tokens, "stream": stream}

    def _send(self, payload: dict[str, Any]) -> httpx.Response:
        """The endpoint's response (2xx, body unread: close it), after up to cfg.retries more
        attempts on a connection error, a timeout or a status worth retrying."""
        attempts = self.cfg.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(self.cfg.retry_backoff_s * 2 ** (attempt - 1), 8.0))
            try:
                request = self._client.build_request("POST", self._url, json=payload)
                response = self._client.send(request, stream=True)
            except httpx.TimeoutException:
                problem = f"no reply within {self.cfg.timeout_s:g} s"
            except httpx.TransportError as exc:
                problem = f"cannot connect ({type(exc).__name__}: {exc})"
            else:
                if response.status_code < 400:
                    return response
                response.read()
                response.close()
                problem = f"HTTP {response.status_code}: {_error_message(response)}"
                if response.status_code not in _RETRY_STATUSES:
                    raise ModelError(f"openai endpoint {self._url} refused the request: {problem}")
            log.info("openai attempt=%d/%d url=%s problem=%s", attempt + 1, attempts, self._url, problem)
        raise ModelError(f"openai endpoint {self._url} is not answering after {attempts} attempt(s): {problem}")


def _error_message(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]
        message = message.get("message", message) if isinstance(message, dict) else message
    except (ValueError, KeyError, TypeError):
        message = response.text
    return str(message).strip()[:200] or response.reason_phrase


def _json(response: httpx.Response, url: str) -> Any:
    try:
        response.read()
        return response.json()
    except httpx.HTTPError as exc:
        raise ModelError(f"openai endpoint {url} broke off its reply: {type(exc).__name__}") from exc
    except ValueError:
        raise ModelError(f"openai endpoint {url} answered with something that is not JSON: {response.text[:80]!r}") from None


def _get(body: Any, url: str, *path: str | int) -> Any:
    """body[path[0]][path[1]]..., or ModelError naming what the reply lacks."""
    value = body
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
            raise ModelError(f"openai endpoint {url} answered with something that is not a chat completion: no {where}") from None
    return value


def _sse_deltas(response: httpx.Response, url: str, timeout_s: float) -> Iterator[str]:
    """The content deltas of a streamed chat completion (server-sent events, "data: {...}"
    lines up to "data: [DONE]")."""
    done = False
    try:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # comments (": keep-alive"), event names, blank separators
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                event = json.loads(data)
            except ValueError:
                raise ModelError(f"openai endpoint {url} streamed something that is not JSON: {data[:80]!r}") from None
            choices = event.get("choices") if isinstance(event, dict) else None
            if not isinstance(choices, list):
                raise ModelError(f"openai endpoint {url} streamed something that is not a chat completion chunk: {data[:80]!r}")
            content = (choices[0].get("delta") or {}).get("content") if choices and isinstance(choices[0], dict) else None
            if isinstance(content, str) and content:
                yield content
            if choices and isinstance(choices[0], dict) and choices[0].get("finish_reason"):
                done = True
    except httpx.TimeoutException:
        raise ModelError(f"openai endpoint {url} stopped streaming: nothing for {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise ModelError(f"openai endpoint {url} broke off its stream: {type(exc).__name__}") from exc
    if not done:
        raise ModelError(f"openai endpoint {url} ended its stream before the answer was finished")
