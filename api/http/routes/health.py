from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from citekb import __version__

from ..deps import KBDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    documents: int


@router.get("/healthz", response_model=Health)
def healthz(kb: KBDep) -> Health:
    return Health(status="ok", version=__version__, documents=len(kb.documents()))
