from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePath

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, UploadFile

from citekb.retrieval.store import check_groups

from ..auth import ReadAccess, WriteAccess
from ..schemas import DeleteResponse, DocumentOut, DocumentsResponse, ErrorResponse, IngestResponse

# Mounted at /v1 (the default collection) and at /v1/collections/{collection}.
router = APIRouter(prefix="/documents", tags=["documents"], responses={404: {"model": ErrorResponse}})


@router.get("", response_model=DocumentsResponse)
def list_documents(access: ReadAccess) -> DocumentsResponse:
    """The collection's documents that the caller may read."""
    return DocumentsResponse(documents=[DocumentOut.from_record(r) for r in access.documents()])


@router.post("", response_model=IngestResponse)
def upload_documents(files: list[UploadFile], access: WriteAccess,
                     groups: Annotated[list[str] | None, Form(description="access groups of these documents "
                                                              "(repeat the field); none: readable by all")] = None) -> IngestResponse:
    """Ingest uploaded files. Each is kept under the index's uploads/ folder by its base name
    (so uploading a new version of report.pdf replaces the old one's chunks). With groups, the
    documents get those access groups (replacing those of a document already indexed)."""
    kb = access.kb
    groups = None if groups is None else check_groups(groups)  # before any file is kept
    limit = int(kb.settings.max_upload_mb * 2**20)
    uploads = kb.settings.index / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=uploads, prefix=".incoming-") as tmp:
        staged = []
        names = [_safe_name(upload.filename) for upload in files]
        for name in names:
            if names.count(name) > 1:  # the second would silently overwrite the first's staged copy
                raise HTTPException(400, f"{name}: uploaded more than once in one request")
        for upload, name in zip(files, names, strict=True):
            target = Path(tmp) / name
            with target.open("wb") as out:
                shutil.copyfileobj(upload.file, out, length=1 << 20)
            if target.stat().st_size > limit:
                raise HTTPException(413, f"{name}: larger than the {kb.settings.max_upload_mb:g} MiB upload limit")
            staged.append(target)
        kept = []
        for target in staged:
            final = uploads / target.name
            target.replace(final)
            kept.append(final)
        return IngestResponse.from_report(kb.ingest(kept, groups=groups))


@router.delete("/{doc_id}", response_model=DeleteResponse)
def delete_document(doc_id: str, access: WriteAccess) -> DeleteResponse:
    access.document(doc_id)  # a document the caller may not read is not there for it to delete
    return DeleteResponse(deleted=DocumentOut.from_record(access.kb.delete(doc_id)))


def _safe_name(filename: str | None) -> str:
    """The base name of an uploaded file; directory parts ("../../etc/passwd") are dropped."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    if not name or name in (".", "..") or name.startswith("."):
        raise HTTPException(400, f"invalid upload file name {filename!r}")
    if len(name.encode("utf-8", "surrogateescape")) > 255:  # NAME_MAX: open() would fail with ENAMETOOLONG
        raise HTTPException(400, f"upload file name {name[:40]!r}... is longer than 255 bytes")
    return name
