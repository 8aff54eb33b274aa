"""The admin page: upload documents, see each ingest's result and errors, list and delete
documents. A static page calling the JSON API with a key the admin types in, so it needs no
rights of its own: what it may do is what that key may do."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from .viewer import widget_file

router = APIRouter(tags=["admin"])


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def admin_page() -> HTMLResponse:
    # Served at /admin, so the page's relative "widget/admin.js" and "v1/..." resolve on this server.
    return HTMLResponse(widget_file("admin.html"), headers={"cache-control": "no-cache"})
