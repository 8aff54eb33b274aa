"""The one table from errors to HTTP statuses. Anything not in it is a 500 with a generic body;
its traceback goes to the log, never to the client."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from citekb.api.keys import ApiKeyError, KeyFileError
from citekb.ingest.errors import (
    CitekbError,
    ConfigError,
    DocumentNotFoundError,
    ExtractionError,
    IndexMismatchError,
    IndexNotFoundError,
    ModelError,
    UnsupportedFormatError,
)

log = logging.getLogger(__name__)

STATUS: dict[type[CitekbError], int] = {
    ApiKeyError: 404,
    KeyFileError: 503,  # every request fails closed until the key file is readable again
    ConfigError: 400,
    UnsupportedFormatError: 415,
    ExtractionError: 422,
    DocumentNotFoundError: 404,
    IndexNotFoundError: 404,
    IndexMismatchError: 409,
    ModelError: 503,
}


def status_for(exc: CitekbError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 409  # a CitekbError without an entry: a conflict with the index's state (e.g. its lock)


def install(app: FastAPI) -> None:
    @app.exception_handler(CitekbError)
    async def _citekb_error(request: Request, exc: CitekbError) -> JSONResponse:
        return JSONResponse(status_code=status_for(exc), content={"error": str(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routes' own HTTPExceptions (bad upload name, too large) and the router's 404/405 get the
        # same {"error": ...} body as every other error, not FastAPI's default {"detail": ...}.
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)}, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error method=%s path=%s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"error": "internal server error"})
