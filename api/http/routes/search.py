from __future__ import annotations

from fastapi import APIRouter

from ..deps import KBDep
from ..schemas import AskRequest, AskResponse, ErrorResponse, HitOut, SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"], responses={404: {"model": ErrorResponse}, 400: {"model": ErrorResponse}})


@router.post("/search", response_model=SearchResponse)
def search(req: SearchRequest, kb: KBDep) -> SearchResponse:
    return SearchResponse(hits=[HitOut.from_hit(h) for h in kb.search(req.query, k=req.k)])


@router.post("/ask", response_model=AskResponse)
def ask(req: AskRequest, kb: KBDep) -> AskResponse:
    return AskResponse.from_answer(kb.ask(req.query, k=req.k, backend=req.backend))
