"""The FastAPI application.

Routes that serve one collection (search, ask, chat, documents) are mounted twice: at /v1/...
for the default collection and at /v1/collections/{collection}/... for the others; each takes
the collection from the path through auth.ReadAccess / WriteAccess. A new such router goes in
COLLECTION_ROUTERS (its own prefix relative to either mount, e.g. "/documents")."""

from __future__ import annotations

import logging
import re
import time
import uuid
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citekb import __version__
from citekb.api.kb import KnowledgeBase

from . import errors
from .auth import CollectionPath, Server
from .routes import admin, chat, collections, documents, health, search, viewer
from .schemas import ErrorResponse

access_log = logging.getLogger("citekb.access")

# Every body but an upload is a small JSON document: a query is at most 4000 characters, which
# is under 50 KB even written entirely as \uXXXX surrogate-pair escapes.
MAX_JSON_BODY_BYTES = 2**20
# An upload request may carry max_upload_mb in all, plus this much for the multipart framing, so
# that one file just over the limit still gets the route's 413 that names it.
UPLOAD_FRAMING_BYTES = 2**20

COLLECTION_ROUTERS = (search.router, documents.router, chat.router, viewer.router)
COLLECTION_PREFIX = "/v1/collections/{collection}"
UPLOAD_PATH = re.compile(r"/v1(/collections/[^/]+)?/documents/?")
# An incoming X-Request-ID is kept when it looks like one (a proxy's or the portal's); anything
# else is replaced, so the log never carries a caller's arbitrary text.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _collection_param(collection: CollectionPath) -> None:
    """Declares and checks the {collection} path parameter of the collection mounts."""


def create_app(kb: KnowledgeBase) -> FastAPI:
    """An app serving kb as the default collection (its settings say which index and models,
    and hold the server's keys, collections, CORS origins and rate limit)."""
    settings = kb.settings
    app = FastAPI(title="citekb", version=__version__,
                  description="Answers from your documents, each claim cited by document, page and lines.")
    app.state.kb = kb
    app.state.server = Server.for_kb(kb)
    errors.install(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=422, content={"error": f"invalid request: {detail}"})

    # Every error body is {"error": ...}. Say so in the OpenAPI document for each status an
    # operation can answer (the errors table's, the routes' own 400 and 413, auth's 401, 403 and
    # 429, and validation's 422), rather than FastAPI's default 422 schema ({"detail": [...]}),
    # which is never sent.
    error_statuses = sorted({*errors.STATUS.values(), 400, 401, 403, 413, 422, 429})
    error_responses: dict[int | str, dict[str, object]] = {s: {"model": ErrorResponse} for s in error_statuses}
    app.include_router(health.router, responses=error_responses)
    app.include_router(collections.router, responses=error_responses)
    app.include_router(viewer.assets)  # widget.js and the admin page's script: static, public
    app.include_router(admin.router)
    for router in COLLECTION_ROUTERS:
        app.include_router(router, prefix="/v1", responses=error_responses)
        app.include_router(router, prefix=COLLECTION_PREFIX, responses=error_responses,
                           dependencies=[Depends(_collection_param)])
    # Outermost last: the request ID and access log see every response, 413s and CORS ones included.
    app.add_middleware(BodyLimitMiddleware, upload_path=UPLOAD_PATH,
                       upload_limit=int(settings.max_upload_mb * 2**20) + UPLOAD_FRAMING_BYTES,
                       upload_hint=f"uploads take at most {settings.max_upload_mb:g} MiB per request (CITEKB_MAX_UPLOAD_MB)",
                       other_limit=MAX_JSON_BODY_BYTES)
    if settings.cors_origins:
        # Keys travel in the Authorization header, never in cookies: no credentials mode.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"], max_age=600)
    app.add_middleware(RequestContextMiddleware)
    return app


class RequestContextMiddleware:
    """Gives each request an ID (the caller's X-Request-ID if it is a sane one, else a new one),
    returns it as X-Request-ID, and logs one access line per request on "citekb.access" (INFO):
    request_id, method, path, status, duration_ms, key (the API key id, or -), client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500  # if the app fails before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            client = scope.get("client")
            access_log.info("request_id=%s method=%s path=%s status=%d duration_ms=%.1f key=%s client=%s",
                            request_id, scope["method"], quote(scope["path"]), status,
                            (time.perf_counter() - started) * 1000, state.get("key_id") or "-",
                            client[0] if client else "-")


class BodyLimitMiddleware:
    """Refuses a request body over its limit with 413 {"error": ...}: at once when Content-Length
    says so, else (a chunked or understated body) as soon as the bytes read pass it. Without this,
    a multipart body is spooled to disk whole before the upload route can look at its size."""

    def __init__(self, app: ASGIApp, upload_path: re.Pattern[str], upload_limit: int, upload_hint: str, other_limit: int) -> None:
        self.app = app
        self.upload_path = upload_path
        self.upload_limit = upload_limit
        self.upload_hint = upload_hint
        self.other_limit = other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["method"] == "POST" and self.upload_path.fullmatch(scope["path"]) is not None
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
