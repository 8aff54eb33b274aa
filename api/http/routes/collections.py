"""The collections themselves: list those the caller may read, create and delete them.
What is inside one (search, ask, chat, documents) is served under /v1/collections/{collection}/
by the same routers as the default collection's /v1/... (see app.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from ..auth import CollectionPath, PrincipalDep, WriteAccess
from ..deps import ServerDep
from ..schemas import ErrorResponse

router = APIRouter(prefix="/v1/collections", tags=["collections"], responses={404: {"model": ErrorResponse}})


class CollectionOut(BaseModel):
    name: str
    documents: int = Field(description="documents the caller may read")
    right: Literal["read", "write"] = Field(description="the caller's right on it")


class CollectionsResponse(BaseModel):
    collections: list[CollectionOut]


@router.get("", response_model=CollectionsResponse)
def list_collections(principal: PrincipalDep, server: ServerDep) -> CollectionsResponse:
    out = []
    for name in server.collections.names():
        right = principal.right(name)
        if right is not None:
            documents = server.collections.get(name).documents(principal.groups)
            out.append(CollectionOut(name=name, documents=len(documents), right=right))
    return CollectionsResponse(collections=out)


@router.put("/{collection}", response_model=CollectionOut, status_code=201,
            responses={200: {"model": CollectionOut, "description": "it already existed"}})
def create_collection(collection: CollectionPath, principal: PrincipalDep, server: ServerDep, response: Response) -> CollectionOut:
    """Create an empty collection (201), or find it there already (200)."""
    if not principal.can_write(collection):
        raise HTTPException(403, f"this caller may not write collection {collection!r}")
    if not server.collections.create(collection):
        response.status_code = 200
    kb = server.collections.get(collection)
    return CollectionOut(name=collection, documents=len(kb.documents(principal.groups)), right="write")


@router.delete("/{collection}", status_code=204, response_class=Response)
def delete_collection(collection: CollectionPath, access: WriteAccess, server: ServerDep) -> Response:
    """Delete the collection with all its documents (not the default collection)."""
    server.collections.delete(access.collection)
    return Response(status_code=204)
