"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from citekb import __version__
from citekb.api.kb import KnowledgeBase

from . import errors
from .routes import documents, health, search


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

    app.include_router(health.router)
    app.include_router(search.router)
    app.include_router(documents.router)
    return app
