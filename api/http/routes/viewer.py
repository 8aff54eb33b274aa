"""What the widget's viewer reads: a document's original file, its PDF pages as images, and a
view of one citation (where it is, with what to highlight), plus the widget's own static files.

The highlight of a PDF quote starts from the line boxes ingestion kept for the cited block and
narrows them to the quoted sentence's characters, read from the same page's text layer the
extractor read; where the sentence cannot be found there (a table, an OCR'd scan, a sentence
split over two pages) the cited block's line boxes are the highlight and `exact` is false.
DOCX and Markdown are shown as text: the cited block or lines, inside their highlighted section."""

from __future__ import annotations

import functools
import io
import re
import threading
import weakref
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import pdfplumber
from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from citekb.api.kb import KnowledgeBase
from citekb.ingest.document import BBox, Block, Chunk, Locator
from citekb.ingest.ids import doc_id_for_file
from citekb.ingest.pipeline import extract
from citekb.retrieval.store import DocumentRecord

from ..auth import ReadAccess
from ..schemas import ErrorResponse

# Mounted at /v1 (the default collection) and at /v1/collections/{collection}, like documents.
router = APIRouter(prefix="/documents", tags=["viewer"], responses={404: {"model": ErrorResponse}, 410: {"model": ErrorResponse}})
# The widget's own files, at /widget/...: public, since a portal page loads them before any key is used.
assets = APIRouter(tags=["widget"])

MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".md": "text/markdown; charset=utf-8",
    ".markdown": "text/markdown; charset=utf-8",
}
# A rendered page has at most this many pixels, whatever dpi asks: a poster-sized page at 200
# dpi would otherwise cost hundreds of megabytes.
MAX_PAGE_PIXELS = 8_000_000
# pdfium (which renders for pdfplumber) is not thread-safe, and routes run in a thread pool.
_PDFIUM = threading.Lock()
# Each loaded snapshot's rows by chunk_id (keyed by id(snapshot), removed when it is collected).
_ROWS: dict[int, dict[str, int]] = {}
_ROWS_LOCK = threading.Lock()
# The widget's files, served as they are: no build step.
WIDGET_ASSETS = {"widget.js": "text/javascript; charset=utf-8", "admin.js": "text/javascript; charset=utf-8"}


class BoxOut(BaseModel):
    """A highlight rectangle in PDF points, origin top-left of the page."""

    page: int
    x0: float
    top: float
    x1: float
    bottom: float


class PageSizeOut(BaseModel):
    page: int
    width: float = Field(description="in PDF points")
    height: float


class BlockOut(BaseModel):
    text: str
    kind: str
    page: int | None
    section: str
    line_start: int | None
    line_end: int | None
    cited: bool = Field(description="the citation's block")
    in_section: bool = Field(description="in the cited section")
    mark: tuple[int, int] | None = Field(description="[start, end) of the quote in text, where found")


class LineOut(BaseModel):
    n: int
    text: str
    cited: bool
    in_section: bool


class ViewResponse(BaseModel):
    doc_id: str
    source: str
    title: str
    format: Literal["pdf", "docx", "markdown"]
    pages: int | None = Field(description="page count (PDF, DOCX)")
    page: int | None = Field(description="the cited page, where the viewer opens")
    page_end: int | None
    line_start: int | None
    line_end: int | None
    section: str
    quote: str
    exact: bool = Field(description="the highlight is the quote itself, not only its block or section")
    boxes: list[BoxOut] = Field(description="PDF: highlight rectangles on the cited pages")
    page_sizes: list[PageSizeOut] = Field(description="PDF: the size of each cited page")
    blocks: list[BlockOut] = Field(description="DOCX: the document's blocks in order")
    lines: list[LineOut] = Field(description="Markdown: the file's lines")


# --------------------------------------------------------------------------- routes

@router.get("/{doc_id}", response_class=FileResponse, responses={200: {"content": {t: {} for t in set(MEDIA_TYPES.values())}}})
def original(doc_id: str, access: ReadAccess) -> FileResponse:
    """The file as it was ingested. 410 when it has since been moved, deleted or changed."""
    record = access.document(doc_id)
    path = _file(record)
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                        filename=record.source, content_disposition_type="inline")


@router.get("/{doc_id}/pages/{page}.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def page_image(doc_id: str, page: int, access: ReadAccess, dpi: Annotated[int, Query(ge=36, le=300)] = 110) -> Response:
    """One page of a PDF rendered as a PNG image."""
    record = access.document(doc_id)
    path = _file(record)
    if path.suffix.lower() != ".pdf":
        raise HTTPException(400, f"{record.source} is not a PDF: it has no page images")
    if not 1 <= page <= (record.pages or 0):
        raise HTTPException(404, f"{record.source} has no page {page} (it has {record.pages})")
    stat = path.stat()
    png = _render(str(path), stat.st_mtime_ns, stat.st_size, page, dpi)
    return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=3600"})


@router.get("/{doc_id}/view", response_model=ViewResponse)
def view(doc_id: str, access: ReadAccess, chunk_id: Annotated[str, Query(max_length=200)],
         quote: Annotated[str, Query(max_length=4000)] = "") -> ViewResponse:
    """Where a citation (its chunk_id, and its text: the quoted sentence, as ask and chat return
    them) lies in its document, with what to highlight there."""
    record = access.document(doc_id)  # 404 unless the caller may read it
    kb = access.kb
    chunk = _chunk(kb, doc_id, chunk_id)
    start = chunk.text.find(quote) if quote.strip() else -1
    loc = chunk.locate(start, start + len(quote)) if start >= 0 else chunk.locator
    path = _file(record)
    base: dict[str, Any] = dict(
        doc_id=doc_id, source=record.source, title=record.title, pages=record.pages, page=loc.page,
        page_end=loc.page_end, line_start=loc.line_start, line_end=loc.line_end, section=loc.section_path,
        quote=quote if start >= 0 else "", exact=False, boxes=[], page_sizes=[], blocks=[], lines=[])
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        boxes, sizes, exact = _pdf_highlight(path, loc, base["quote"])
        return ViewResponse(**base | dict(format="pdf", boxes=boxes, page_sizes=sizes, exact=exact))
    section = chunk.locator.section
    if suffix == ".docx":
        blocks, exact = _docx_blocks(kb, path, doc_id, loc, section, base["quote"])
        return ViewResponse(**base | dict(format="docx", blocks=blocks, exact=exact))
    lines = _markdown_lines(kb, path, doc_id, loc, section)
    return ViewResponse(**base | dict(format="markdown", lines=lines, exact=start >= 0))


@assets.get("/widget/{name}", include_in_schema=False)
def widget_asset(name: str) -> Response:
    """The widget's static files (widget.js, the admin page): no build step, shipped as package data."""
    if name not in WIDGET_ASSETS:
        raise HTTPException(404, f"no widget file {name!r}")
    return Response(widget_file(name), media_type=WIDGET_ASSETS[name], headers={"cache-control": "no-cache"})


@functools.cache
def widget_file(name: str) -> bytes:
    """One file of citekb/api/widget/ (package data)."""
    return resources.files("citekb.api").joinpath("widget", name).read_bytes()


# --------------------------------------------------------------------------- lookups

def _chunk(kb: KnowledgeBase, doc_id: str, chunk_id: str) -> Chunk:
    snapshot = kb.snapshot()
    with _ROWS_LOCK:
        rows = _ROWS.get(id(snapshot))
        if rows is None:
            # Built once per snapshot (a loaded snapshot never changes) and dropped with it.
            rows = _ROWS[id(snapshot)] = {c.chunk_id: i for i, c in enumerate(snapshot.chunks)}
            weakref.finalize(snapshot, _ROWS.pop, id(snapshot), None)
    row = rows.get(chunk_id) if chunk_id.startswith(doc_id + ":") else None
    if row is None:
        raise HTTPException(404, f"no chunk {chunk_id!r} in document {doc_id!r}")
    return snapshot.chunks[row]


def _file(record: DocumentRecord) -> Path:
    """The ingested file, if it is still there with the bytes that were ingested."""
    path = Path(record.path)
    try:
        stat = path.stat()
    except OSError:
        raise HTTPException(410, f"{record.source}: its file is no longer on the server (moved or deleted "
                                 "since it was ingested); ingest it again") from None
    if _digest(str(path), stat.st_mtime_ns, stat.st_size) != record.doc_id:
        raise HTTPException(410, f"{record.source}: its file has changed since it was ingested; ingest it again")
    return path


@functools.lru_cache(maxsize=256)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    # Keyed by mtime and size too, so a file rewritten in place is hashed again.
    return doc_id_for_file(Path(path))


# --------------------------------------------------------------------------- PDF

@functools.lru_cache(maxsize=32)
def _render(path: str, mtime_ns: int, size: int, page: int, dpi: int) -> bytes:
    with _PDFIUM, pdfplumber.open(path) as pdf:
        pdf_page = pdf.pages[page - 1]
        inches = float(pdf_page.width) * float(pdf_page.height) / 72**2
        resolution = min(dpi, int((MAX_PAGE_PIXELS / max(inches, 1e-6)) ** 0.5))
        image = pdf_page.to_image(resolution=resolution).original
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _pdf_highlight(path: Path, loc: Locator, quote: str) -> tuple[list[BoxOut], list[PageSizeOut], bool]:
    """The quote's boxes on each cited page (exact), else the cited block's line boxes."""
    boxes: list[BoxOut] = []
    sizes: list[PageSizeOut] = []
    exact = bool(quote)
    first, last = loc.page or 1, loc.page_end or loc.page or 1
    with _PDFIUM, pdfplumber.open(path) as pdf:
        for number in range(first, min(last, len(pdf.pages)) + 1):
            page = pdf.pages[number - 1]
            sizes.append(PageSizeOut(page=number, width=float(page.width), height=float(page.height)))
            region = [b for b in loc.bboxes if b.page == number]
            found = quote_boxes(page, number, quote, region) if quote else []
            exact = exact and bool(found)
            boxes.extend(BoxOut(page=b.page, x0=b.x0, top=b.top, x1=b.x1, bottom=b.bottom) for b in found or region)
    return boxes, sizes, exact


def quote_boxes(page: Any, number: int, quote: str, region: Sequence[BBox]) -> list[BBox]:
    """One box per text line covering the quote's characters within region (the cited block's
    line boxes), from the page's text lines as the extractor reads them; [] if it is not there.
    Whitespace is ignored on both sides: the extractor joined wrapped lines with a space (or
    none, between CJK characters or after a hyphen)."""
    if not region:
        return []
    text: list[str] = []
    owner: list[tuple[int, dict[str, Any]]] = []  # per character of text: its line and pdfplumber char
    for i, line in enumerate(page.extract_text_lines(return_chars=True, strip=True)):
        if not any(_overlaps(line, box) for box in region):
            continue
        for char in line["chars"]:
            for c in char["text"]:  # a ligature glyph may carry several characters
                if not c.isspace():
                    text.append(c)
                    owner.append((i, char))
    haystack = "".join(text)
    needle = "".join(quote.split())
    at = haystack.find(needle)
    if at < 0 and "|" in needle:
        # A table row: the extractor joined its cells with " | ", which the page does not print.
        needle = needle.replace("|", "")
        at = haystack.find(needle)
    if at < 0 or not needle:
        return []
    per_line: dict[int, list[dict[str, Any]]] = {}
    for i, char in owner[at:at + len(needle)]:
        per_line.setdefault(i, []).append(char)
    return [BBox(number, round(min(c["x0"] for c in chars), 1), round(min(c["top"] for c in chars), 1),
                 round(max(c["x1"] for c in chars), 1), round(max(c["bottom"] for c in chars), 1))
            for _, chars in sorted(per_line.items())]


def _overlaps(line: dict[str, Any], box: BBox) -> bool:
    """Whether a text line lies in box: its vertical middle inside, and the two overlapping across."""
    middle = (line["top"] + line["bottom"]) / 2
    return box.top - 1 <= middle <= box.bottom + 1 and line["x0"] < box.x1 + 1 and box.x0 - 1 < line["x1"]


# --------------------------------------------------------------------------- DOCX and Markdown

def _blocks(kb: KnowledgeBase, path: Path, doc_id: str) -> tuple[Block, ...]:
    # Extracted again with the same extractor, from the same bytes (_file checked the hash), so
    # the blocks and their character offsets are those the index was built from.
    return extract(path, doc_id, kb.settings.ingest_config(), kb.extractors).blocks


def _in_section(block_section: Sequence[str], section: Sequence[str]) -> bool:
    return bool(section) and tuple(block_section[:len(section)]) == tuple(section)


def _find(text: str, quote: str) -> tuple[int, int] | None:
    """[start, end) of quote in text, whitespace-insensitively; None if absent."""
    words = quote.split()
    if not words:
        return None
    match = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return (match.start(), match.end()) if match else None


def _docx_blocks(kb: KnowledgeBase, path: Path, doc_id: str, loc: Locator, section: Sequence[str],
                 quote: str) -> tuple[list[BlockOut], bool]:
    out: list[BlockOut] = []
    exact = False
    for block in _blocks(kb, path, doc_id):
        b = block.locator
        overlaps = b.char_start < loc.char_end and loc.char_start < b.char_end
        mark = _find(block.text, quote) if overlaps and quote else None
        exact = exact or mark is not None
        out.append(BlockOut(text=block.text, kind=block.kind, page=b.page, section=b.section_path,
                            line_start=b.line_start, line_end=b.line_end, cited=overlaps,
                            in_section=_in_section(b.section, section), mark=mark))
    return out, exact


def _markdown_lines(kb: KnowledgeBase, path: Path, doc_id: str, loc: Locator, section: Sequence[str]) -> list[LineOut]:
    spans = [(b.locator.line_start, b.locator.line_end) for b in _blocks(kb, path, doc_id)
             if _in_section(b.locator.section, section) and b.locator.line_start is not None]
    first = min((s for s, _ in spans), default=0)
    last = max((e or s for s, e in spans), default=-1)
    cited_first, cited_last = loc.line_start or 0, loc.line_end or -1
    # Decoded as the extractor decodes it, so line numbers agree.
    lines = path.read_bytes().decode("utf-8-sig", errors="replace").splitlines()
    return [LineOut(n=n, text=text, cited=cited_first <= n <= cited_last, in_section=first <= n <= last)
            for n, text in enumerate(lines, 1)]
