"""PDF via pdfplumber: text lines per page in reading order, grouped into paragraphs by the
vertical gaps between lines, headings told apart by font size, line boxes kept for highlighting.
A page with no text layer but a picture on it (a scan) is rendered and read by OCR."""

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
from ..errors import ExtractionError, reason
from .base import DocumentBuilder, HeadingPath, report_progress
from .ocr import read_lines

# Running page numbers ("- 3 -", "Page 3", "3 / 12", "第 3 页") are furniture, not content.
_PAGE_NUMBER = re.compile(r"^\s*(?:[-–—]\s*\d+\s*[-–—]|(?:page\s*)?\d+(?:\s*(?:/|of)\s*\d+)?|第\s*\d+\s*页(?:\s*/?\s*共\s*\d+\s*页)?)\s*$", re.I)
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")
HEADING_SIZE_RATIO = 1.12  # a line this much larger than body text is a heading
HEADING_MAX_CHARS = 150
# A page with fewer characters than this in its text layer, and pictures covering at least
# OCR_MIN_IMAGE_SHARE of it, is a scan (a stray page number or scanner stamp is not a text layer).
OCR_MAX_TEXT_CHARS = 10
OCR_MIN_IMAGE_SHARE = 0.05
OCR_DPI = 150
# Pixels of one rendered page at most: a poster-sized page at OCR_DPI would need gigabytes.
OCR_MAX_PIXELS = 12_000_000


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
    ocr: bool = False  # read by OCR from a picture of the page; size is the box height, not a font size

    @property
    def box(self) -> BBox:
        return BBox(self.page, round(self.x0, 1), round(self.top, 1), round(self.x1, 1), round(self.bottom, 1))


class PdfExtractor:
    suffixes = (".pdf",)

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        """ocr: read pages without a text layer from their pictures; if False they give no text."""
        try:
            with pdfplumber.open(path) as pdf:
                lines: list[_Line] = []
                seen_chars = 0
                for number, page in enumerate(pdf.pages, 1):
                    # Counted before lines and tables are worked out: a page of millions of
                    # tiny characters is refused here instead of costing minutes of layout.
                    seen_chars += sum(not c["text"].isspace() for c in page.chars)
                    if max_chars is not None and seen_chars > max_chars:
                        raise ExtractionError(f"cannot index {path.name}: more than {max_chars:,} characters of text (the per-file limit)")
                    page_lines = _page_lines(page, number)
                    if ocr and _is_scan(page, page_lines):
                        page_lines = _ocr_lines(page, number, path.name)
                    lines.extend(page_lines)
                    report_progress(f"page {number}")
                    page.close()  # frees the page's parsed objects; a long PDF otherwise keeps them all
                page_count = len(pdf.pages)
                meta_title = str(pdf.metadata.get("Title") or "").strip() if isinstance(pdf.metadata, dict) else ""
        except (ExtractionError, MemoryError):
            raise
        except Exception as exc:  # pdfminer raises many types for damaged files; all mean the same to a user
            # pdfplumber re-raises pdfminer's errors wrapped as PdfminerException(original).
            cause = exc.args[0] if isinstance(exc, PdfminerException) and exc.args and isinstance(exc.args[0], Exception) else exc
            if isinstance(cause, (PDFPasswordIncorrect, PDFEncryptionError)):
                raise ExtractionError(f"cannot read {path.name}: the PDF is encrypted and needs a password") from exc
            raise ExtractionError(f"cannot read {path.name}: not a readable PDF ({reason(cause)})") from exc
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


def _is_scan(page: Any, lines: list[_Line]) -> bool:
    if sum(len(line.text) for line in lines) >= OCR_MAX_TEXT_CHARS:
        return False
    area = float(page.width * page.height) or 1.0
    covered = 0.0
    for image in page.images:
        x0, x1 = max(image["x0"], page.bbox[0]), min(image["x1"], page.bbox[2])
        top, bottom = max(image["top"], page.bbox[1]), min(image["bottom"], page.bbox[3])
        covered += max(0.0, x1 - x0) * max(0.0, bottom - top)
    return covered / area >= OCR_MIN_IMAGE_SHARE


def _ocr_lines(page: Any, number: int, name: str) -> list[_Line]:
    """The page's lines as OCR reads them from a rendering, boxes scaled back to PDF points.
    Replaces the page's (near-empty) text layer."""
    width_in, height_in = float(page.width) / 72, float(page.height) / 72
    dpi = min(OCR_DPI, (OCR_MAX_PIXELS / max(width_in * height_in, 1e-6)) ** 0.5)
    try:
        image = page.to_image(resolution=dpi, antialias=True).original
        found = read_lines(image)
    except ImportError as exc:
        raise ExtractionError(
            f"cannot read {name}: page {number} is a scanned image and OCR is unavailable "
            f"({exc.name or 'rapidocr'} is not installed; install rapidocr and onnxruntime)"
        ) from exc
    except MemoryError:
        raise
    except Exception as exc:  # pdfium and onnxruntime raise their own types; all mean this page could not be read
        if "bad_alloc" in str(exc):  # onnxruntime's C++ allocation failure, wrapped in a RuntimeException
            raise ExtractionError(f"cannot read {name}: OCR of page {number} ran out of memory") from exc
        raise ExtractionError(f"cannot read {name}: OCR of page {number} failed ({reason(exc)})") from exc
    sx, sy = float(page.width) / image.width, float(page.height) / image.height
    x_off, y_off = float(page.bbox[0]), float(page.bbox[1])
    out = []
    for line in found:
        if _PAGE_NUMBER.match(line.text):
            continue
        top, bottom = y_off + line.top * sy, y_off + line.bottom * sy
        out.append(_Line(line.text, number, top, bottom, x_off + line.x0 * sx, x_off + line.x1 * sx,
                         bottom - top, False, ocr=True))
    return out


def _inside(raw: dict[str, Any], boxes: list[tuple[float, float, float, float]]) -> bool:
    mid_x, mid_y = (raw["x0"] + raw["x1"]) / 2, (raw["top"] + raw["bottom"]) / 2
    return any(x0 <= mid_x <= x1 and top <= mid_y <= bottom for x0, top, x1, bottom in boxes)


def _add_paragraphs(builder: DocumentBuilder, lines: list[_Line]) -> None:
    if not lines:
        return
    # OCR boxes give no font size, so they take no part in telling headings from body text.
    text_lines = [line for line in lines if not line.table and not line.ocr]
    body_size = statistics.mode(round(line.size, 1) for line in text_lines) if text_lines else 0.0
    # The usual gap between two wrapped lines of body text; gaps around headings and tables
    # would inflate it until paragraphs merged.
    gaps = [b.top - a.bottom for a, b in zip(text_lines, text_lines[1:])
            if a.page == b.page and b.top > a.bottom and round(a.size, 1) == round(b.size, 1) == body_size
            and not _is_heading(a, body_size) and not _is_heading(b, body_size)]
    line_gap = statistics.median(gaps) if gaps else 0.0
    # The same for OCR'd lines, which have their own spacing (boxes hug the glyphs).
    ocr_gaps = [b.top - a.bottom for a, b in zip(lines, lines[1:]) if a.ocr and b.ocr and a.page == b.page and b.top > a.bottom]
    ocr_gap = statistics.median(ocr_gaps) if ocr_gaps else 0.0
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
            if line.ocr or prev.ocr:
                new_paragraph = line.ocr != prev.ocr or line.top - prev.bottom > ocr_gap + 0.45 * (prev.bottom - prev.top)
            else:
                wide_gap = line.top - prev.bottom > line_gap + 0.45 * (prev.bottom - prev.top)
                new_paragraph = wide_gap or abs(line.size - prev.size) > 0.5
            if new_page or new_paragraph:
                flush()
        paragraph.append(line)
    flush()


def _is_heading(line: _Line, body_size: float) -> bool:
    if line.table or line.ocr or len(line.text) > HEADING_MAX_CHARS or _PAGE_NUMBER.match(line.text):
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
