"""Search and ask in one collection. Mounted at /v1 (the default collection) and at
/v1/collections/{collection}; only the chunks the caller's key may read are searched."""

from __future__ import annotations

from fastapi import APIRouter

from ..auth import ReadAccess
from ..schemas import AskRequest, AskResponse, ErrorResponse, HitOut, SearchRequest, SearchResponse

router = APIRouter(tags=["search"], responses={404: {"model": ErrorResponse}, 400: {"model": ErrorResponse}})


@router.post("/search", response_model=SearchResponse)
def search(req: SearchRequest, access: ReadAccess) -> SearchResponse:
    return SearchResponse(hits=[HitOut.from_hit(h) for h in access.kb.search(req.query, k=req.k, groups=access.groups)])


@router.post("/ask", response_model=AskResponse)
def ask(req: AskRequest, access: ReadAccess) -> AskResponse:
    return AskResponse.from_answer(access.kb.ask(req.query, k=req.k, backend=req.backend, groups=access.groups))
