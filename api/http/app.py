"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citekb import __version__
from citekb.api.kb import KnowledgeBase

from . import errors
from .routes import documents, health, search
from .schemas import ErrorResponse

# Every body but an upload is a small JSON document: a query is at most 4000 characters, which
# is under 50 KB even written entirely as \uXXXX surrogate-pair escapes.
MAX_JSON_BODY_BYTES = 2**20
# An upload request may carry max_upload_mb in all, plus this much for the multipart framing, so
# that one file just over the limit still gets the route's 413 that names it.
UPLOAD_FRAMING_BYTES = 2**20


def create_app(kb: KnowledgeBase) -> FastAPI:
    """An app serving kb (its settings say which index and models)."""
    app = FastAPI(title="citekb", version=__version__,
                  description="Answers from your documents, each claim cited by document, page and lines.")
    app.state.kb = kb
    errors.install(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=422, content={"error": f"invalid request: {detail}"})

    # Every error body is {"error": ...}. Say so in the OpenAPI document for each status an
    # operation can answer (the errors table's, the routes' own 400 and 413, and validation's
    # 422), rather than FastAPI's default 422 schema ({"detail": [...]}), which is never sent.
    error_statuses = sorted({*errors.STATUS.values(), 400, 413, 422})
    error_responses: dict[int | str, dict[str, object]] = {s: {"model": ErrorResponse} for s in error_statuses}
    for router in (health.router, search.router, documents.router):
        app.include_router(router, responses=error_responses)
    app.add_middleware(BodyLimitMiddleware, upload_path=documents.router.prefix,
                       upload_limit=int(kb.settings.max_upload_mb * 2**20) + UPLOAD_FRAMING_BYTES,
                       upload_hint=f"uploads take at most {kb.settings.max_upload_mb:g} MiB per request (CITEKB_MAX_UPLOAD_MB)",
                       other_limit=MAX_JSON_BODY_BYTES)
    return app


class BodyLimitMiddleware:
    """Refuses a request body over its limit with 413 {"error": ...}: at once when Content-Length
    says so, else (a chunked or understated body) as soon as the bytes read pass it. Without this,
    a multipart body is spooled to disk whole before the upload route can look at its size."""

    def __init__(self, app: ASGIApp, upload_path: str, upload_limit: int, upload_hint: str, other_limit: int) -> None:
        self.app = app
        self.upload_path = upload_path
        self.upload_limit = upload_limit
        self.upload_hint = upload_hint
        self.other_limit = other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["method"] == "POST" and scope["path"].rstrip("/") == self.upload_path
        limit = self.upload_limit if is_upload else self.other_limit
        message = f"request body is larger than {limit} bytes" + (f": {self.upload_hint}" if is_upload else "")
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(scope, receive, send, message)
            return
        received = 0
        over = started = replaced = False

        async def counting_receive() -> Message:
            nonlocal received, over
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > limit:
                    over = True
                    raise _BodyTooLarge()
            return incoming

        async def guarded_send(out: Message) -> None:
            nonlocal started, replaced
            if over and not started:
                # The body reader turned our exception into its own error response (FastAPI
                # answers 400 "error parsing the body"); the client gets the 413 instead.
                replaced = True
            if out["type"] == "http.response.start":
                started = True
                if replaced:
                    await _too_large(scope, receive, send, message)
            if not replaced:
                await send(out)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if started and not replaced:
                raise  # a response already under way cannot become a 413: let the server drop it
            if not started:
                await _too_large(scope, receive, send, message)


class _BodyTooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed header; counting still bounds the body
    return None


async def _too_large(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    # Connection: close, since the rest of the body is left unread on the connection.
    await JSONResponse(status_code=413, content={"error": message}, headers={"connection": "close"})(scope, receive, send)
