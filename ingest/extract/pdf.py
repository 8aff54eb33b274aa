"""PDF via pdfplumber: text lines per page in reading order, grouped into paragraphs by the
vertical gaps between lines, headings told apart by font size, line boxes kept for highlighting."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pdfplumber
from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
from pdfplumber.utils.exceptions import PdfminerException

from ..document import BBox, Document
from ..errors import ExtractionError
from .base import DocumentBuilder, HeadingPath

# Running page numbers ("- 3 -", "Page 3", "3 / 12", "第 3 页") are furniture, not content.
_PAGE_NUMBER = re.compile(r"^\s*(?:[-–—]\s*\d+\s*[-–—]|(?:page\s*)?\d+(?:\s*(?:/|of)\s*\d+)?|第\s*\d+\s*页(?:\s*/?\s*共\s*\d+\s*页)?)\s*$", re.I)
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")
HEADING_SIZE_RATIO = 1.12  # a line this much larger than body text is a heading
HEADING_MAX_CHARS = 150


@dataclass(slots=True)
class _Line:
    text: str
    page: int
    top: float
    bottom: float
    x0: float
    x1: float
    size: float
    bold: bool
    table: bool = False  # a whole ruled table, rows on lines and cells joined by " | "

    @property
    def box(self) -> BBox:
        return BBox(self.page, round(self.x0, 1), round(self.top, 1), round(self.x1, 1), round(self.bottom, 1))


class PdfExtractor:
    suffixes = (".pdf",)

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None) -> Document:
        try:
            with pdfplumber.open(path) as pdf:
                lines = [line for number, page in enumerate(pdf.pages, 1) for line in _page_lines(page, number)]
                page_count = len(pdf.pages)
                meta_title = str(pdf.metadata.get("Title") or "").strip() if isinstance(pdf.metadata, dict) else ""
        except ExtractionError:
            raise
        except Exception as exc:  # pdfminer raises many types for damaged files; all mean the same to a user
            # pdfplumber re-raises pdfminer's errors wrapped as PdfminerException(original).
            cause = exc.args[0] if isinstance(exc, PdfminerException) and exc.args and isinstance(exc.args[0], Exception) else exc
            if isinstance(cause, (PDFPasswordIncorrect, PDFEncryptionError)):
                raise ExtractionError(f"cannot read {path.name}: the PDF is encrypted and needs a password") from exc
            reason = str(cause).strip() or type(cause).__name__
            raise ExtractionError(f"cannot read {path.name}: not a readable PDF ({reason[:200]})") from exc
        builder = DocumentBuilder(doc_id=doc_id, source=path.name, title=meta_title, max_chars=max_chars)
        _add_paragraphs(builder, lines)
        if not lines:
            builder.warnings.append(f"{path.name}: no extractable text (scanned or image-only pages?)")
        return builder.build(pages=page_count, fallback_title=path.stem)


def _page_lines(page: Any, number: int) -> list[_Line]:
    """The page's text lines top to bottom; a ruled table becomes one line of its own, placed
    where it starts, so its cells stay apart instead of running together."""
    tables = [t for t in page.find_tables() if len(t.rows) >= 2]
    out = []
    for table in tables:
        rows = [" | ".join(" ".join(str(cell or "").split()) for cell in row) for row in table.extract()]
        text = "\n".join(r for r in rows if r.strip(" |"))
        if text:
            x0, top, x1, bottom = table.bbox
            out.append(_Line(text, number, top, bottom, x0, x1, 0.0, False, table=True))
    boxes = [t.bbox for t in tables]
    for raw in page.extract_text_lines(return_chars=True, strip=True):
        text = raw["text"].strip()
        if not text or _PAGE_NUMBER.match(text) or _inside(raw, boxes):
            continue
        chars = raw["chars"]
        sizes = [c["size"] for c in chars if not c["text"].isspace()] or [0.0]
        bold = sum("bold" in str(c.get("fontname", "")).lower() for c in chars) > len(chars) / 2
        out.append(_Line(text, number, raw["top"], raw["bottom"], raw["x0"], raw["x1"], statistics.median(sizes), bold))
    out.sort(key=lambda line: line.top)
    return out


def _inside(raw: dict[str, Any], boxes: list[tuple[float, float, float, float]]) -> bool:
    mid_x, mid_y = (raw["x0"] + raw["x1"]) / 2, (raw["top"] + raw["bottom"]) / 2
    return any(x0 <= mid_x <= x1 and top <= mid_y <= bottom for x0, top, x1, bottom in boxes)


def _add_paragraphs(builder: DocumentBuilder, lines: list[_Line]) -> None:
    if not lines:
        return
    text_lines = [line for line in lines if not line.table]
    if not text_lines:
        text_lines = lines
    body_size = statistics.mode(round(line.size, 1) for line in text_lines)
    # The usual gap between two wrapped lines of body text; gaps around headings and tables
    # would inflate it until paragraphs merged.
    gaps = [b.top - a.bottom for a, b in zip(text_lines, text_lines[1:])
            if a.page == b.page and b.top > a.bottom and round(a.size, 1) == round(b.size, 1) == body_size
            and not _is_heading(a, body_size) and not _is_heading(b, body_size)]
    line_gap = statistics.median(gaps) if gaps else 0.0
    heading_sizes = sorted({round(l.size, 1) for l in text_lines if _is_heading(l, body_size)}, reverse=True)
    headings = HeadingPath()
    paragraph: list[_Line] = []

    def flush() -> None:
        if paragraph:
            builder.add(_join(paragraph), page=paragraph[0].page, section=headings.path,
                        bboxes=[line.box for line in paragraph])
            paragraph.clear()

    for line in lines:
        if line.table:
            flush()
            builder.add(line.text, kind="table", page=line.page, section=headings.path, bboxes=[line.box])
            continue
        if _is_heading(line, body_size):
            flush()
            level = heading_sizes.index(round(line.size, 1)) + 1  # larger type, higher level
            headings.enter(level, line.text)
            if not builder.title:
                builder.title = line.text
            builder.add(line.text, kind="heading", page=line.page, section=headings.path, bboxes=[line.box])
            continue
        if paragraph:
            prev = paragraph[-1]
            new_page = line.page != prev.page
            # A gap clearly wider than the usual line spacing starts a new paragraph.
            wide_gap = line.top - prev.bottom > line_gap + 0.45 * (prev.bottom - prev.top)
            if new_page or wide_gap or abs(line.size - prev.size) > 0.5:
                flush()
        paragraph.append(line)
    flush()


def _is_heading(line: _Line, body_size: float) -> bool:
    if line.table or len(line.text) > HEADING_MAX_CHARS or _PAGE_NUMBER.match(line.text):
        return False
    bigger = line.size >= body_size * HEADING_SIZE_RATIO
    bold_short = line.bold and len(line.text) < 80 and not line.text.rstrip().endswith((".", "。", ":", "："))
    return bigger or bold_short


def _join(lines: list[_Line]) -> str:
    """Join wrapped lines: no space between CJK characters or after a hyphen, else one space."""
    text = lines[0].text
    for line in lines[1:]:
        if (_CJK.match(text[-1]) and _CJK.match(line.text[0])) or text.endswith("-"):
            text += line.text
        else:
            text += " " + line.text
    return text
