"""Request dependencies: the server's shared state and the knowledge base a route serves.

Routes that read or write documents take ``ReadAccess`` / ``WriteAccess`` from ``auth`` (the
collection's KnowledgeBase, checked against the caller's key). ``KBDep`` is the default
collection with no access check, for what every caller may see (health)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citekb.api.kb import KnowledgeBase

from .auth import Access, ReadAccess, Server, WriteAccess, collection_of, get_server, require_read, require_write

__all__ = ["Access", "KBDep", "ReadAccess", "Server", "ServerDep", "WriteAccess", "collection_kb", "collection_of",
           "get_kb", "get_server", "require_read", "require_write"]


def get_kb(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase = request.app.state.kb
    return kb


def collection_kb(request: Request, name: str) -> KnowledgeBase:
    """Collection name's KnowledgeBase, without an access check (CollectionNotFoundError: 404)."""
    return get_server(request).collections.get(name)


KBDep = Annotated[KnowledgeBase, Depends(get_kb)]
ServerDep = Annotated[Server, Depends(get_server)]
