"""OpenAI-compatible chat completions, so the `openai` client and chat front ends work unchanged.

The question is the last user message; earlier turns are accepted and not used (each answer is
retrieved afresh). The answer's text carries [n] markers and the response a top-level
`citations` list (the /ask citation schema) and `grounded`. With "stream": true the answer comes
as server-sent events in OpenAI's chunk format: a role chunk, text deltas, then a last chunk
with finish_reason "stop" that carries `citations` and `grounded`, then `data: [DONE]`."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from citekb.generation.answer import Answer
from citekb.ingest.errors import CitekbError, ConfigError

from ..auth import PrincipalDep, ReadAccess
from ..errors import status_for
from ..schemas import CitationOut, ErrorResponse

log = logging.getLogger(__name__)

router = APIRouter(tags=["chat"], responses={400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}})

MODEL_ID = "citekb"
MAX_QUESTION_CHARS = 4000  # as /ask's query


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatRequest(BaseModel):
    # OpenAI's other parameters (temperature, max_tokens, ...) are accepted and have no effect.
    model_config = ConfigDict(extra="ignore")
    model: str = Field(MODEL_ID, description="echoed back; the answer always comes from citekb")
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    k: int | None = Field(None, ge=1, le=100, strict=True, description="citekb: passages retrieved for the answer")
    backend: str | None = Field(None, description="citekb: answer backend (default: server setting)")

    def question(self) -> str:
        user = [m for m in self.messages if m.role == "user"]
        if not user or not user[-1].text().strip():
            raise ConfigError("messages: the last user message (the question) is missing or empty")
        question = user[-1].text().strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise ConfigError(f"messages: the question is longer than {MAX_QUESTION_CHARS} characters")
        return question


class ChatResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatResponseMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    citations: list[CitationOut] = Field(description="the sources of the answer's [n] markers")
    grounded: bool = Field(description="false when the documents do not answer the question")


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "citekb"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


@router.get("/models", response_model=ModelList)
def list_models(principal: PrincipalDep) -> ModelList:
    """What chat front ends list to choose from: one model, citekb."""
    return ModelList(data=[ModelOut(id=MODEL_ID)])


@router.post("/chat/completions", response_model=ChatCompletion,
             responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream is true"}})
def chat_completions(req: ChatRequest, access: ReadAccess) -> ChatCompletion | StreamingResponse:
    question = req.question()
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not req.stream:
        answer = access.kb.ask(question, k=req.k, backend=req.backend, groups=access.groups)
        return ChatCompletion(id=completion_id, created=created, model=req.model,
                              choices=[ChatChoice(message=ChatResponseMessage(content=answer.text))],
                              citations=[CitationOut.from_citation(c) for c in answer.citations], grounded=answer.grounded)
    # Retrieval runs here, before the response starts, so that its errors are still a 4xx.
    items = access.kb.ask_stream(question, k=req.k, backend=req.backend, groups=access.groups)
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": req.model}
    return StreamingResponse(_events(head, items), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _events(head: dict[str, Any], items: Iterator[str | Answer]) -> Iterator[str]:
    def chunk(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        body = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    answer: Answer | None = None
    try:
        for item in items:
            if isinstance(item, Answer):
                answer = item
            elif item:
                yield chunk({"content": item})
    except CitekbError as exc:
        yield _error(str(exc), "invalid_request_error" if status_for(exc) < 500 else "server_error")
        return
    except Exception:  # the boundary of a response already under way: the client gets an error event
        log.exception("chat stream failed id=%s", head["id"])
        yield _error("internal server error", "server_error")
        return
    if answer is None:
        log.error("chat stream ended without an answer id=%s", head["id"])
        yield _error("internal server error", "server_error")
        return
    citations = [CitationOut.from_citation(c).model_dump(mode="json") for c in answer.citations]
    yield chunk({}, "stop", citations=citations, grounded=answer.grounded)
    yield "data: [DONE]\n\n"


def _error(message: str, kind: str) -> str:
    # The openai client raises APIError on an event carrying "error", as OpenAI's API sends it.
    return f"data: {json.dumps({'error': {'message': message, 'type': kind}}, ensure_ascii=False)}\n\n"
