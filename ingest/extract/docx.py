"""DOCX via python-docx: paragraphs and tables in body order, heading paths from heading
styles, page numbers from explicit page breaks and Word's rendered page-break markers."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import docx
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from ..document import Document
from ..errors import ExtractionError, reason
from .base import DocumentBuilder, HeadingPath

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.I)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted OOXML (and old .doc) live in an OLE container
# A zip bomb is refused from the zip directory, before anything is inflated: python-docx loads
# every part into memory and parses word/document.xml into a tree of ~8 bytes per byte of XML
# (32 MiB of XML: 0.8 s and 250 MiB). Both limits must be passed: a large document full of
# photos has a large total but a ratio near 1, and a small file may well compress 50 times.
MAX_UNZIPPED_BYTES = 100 * 2**20
MAX_UNZIP_RATIO = 50
MAX_PARTS = 10_000  # real documents have tens to hundreds


class DocxExtractor:
    suffixes = (".docx",)

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        with path.open("rb") as f:
            magic = f.read(8)
        if magic == _OLE_MAGIC:
            raise ExtractionError(f"cannot read {path.name}: the document is password-protected or an old binary .doc")
        if not zipfile.is_zipfile(path):
            raise ExtractionError(f"cannot read {path.name}: not a DOCX file (not a zip archive)")
        _check_unzipped_size(path)
        try:
            document = docx.Document(str(path))
        except MemoryError:
            raise
        except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors for broken packages
            raise ExtractionError(f"cannot read {path.name}: not a valid DOCX package ({reason(exc)})") from exc
        builder = DocumentBuilder(doc_id=doc_id, source=path.name, title=(document.core_properties.title or "").strip(),
                                  max_chars=max_chars)
        pager = _Pager()
        headings = HeadingPath()
        # A sectPr closes its section, but its w:type says how that section *starts*: whether a
        # break in a paragraph starts a new page is told by the sectPr that comes after it.
        body = document.element.body
        sect_prs = [s for s in body.iter(qn("w:sectPr")) if s.getparent().tag in (qn("w:pPr"), qn("w:body"))]
        new_page_after = {a: _starts_new_page(b) for a, b in zip(sect_prs, sect_prs[1:])}
        levels = _heading_levels(document)
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                _add_paragraph(builder, item, pager, headings, new_page_after, levels)
            elif isinstance(item, Table):
                rows = [" | ".join(_unique_cells(row)) for row in item.rows]
                builder.add("\n".join(r for r in rows if r.strip()), kind="table", page=pager.page, section=headings.path)
                pager.saw_text()
        return builder.build(pages=pager.page, fallback_title=path.stem)


def _check_unzipped_size(path: Path) -> None:
    """Refuses a DOCX whose parts would unpack to far more than the file holds (a zip bomb).
    The sizes come from the zip directory; zipfile never inflates a part past its stated size."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ExtractionError(f"cannot read {path.name}: not a valid DOCX package ({reason(exc)})") from exc
    if len(parts) > MAX_PARTS:
        raise ExtractionError(f"cannot read {path.name}: the package has {len(parts):,} parts (at most {MAX_PARTS:,}); refused as a likely zip bomb")
    total = sum(part.file_size for part in parts)
    size = max(path.stat().st_size, 1)
    if total > MAX_UNZIPPED_BYTES and total > MAX_UNZIP_RATIO * size:
        largest = max(parts, key=lambda part: part.file_size)
        raise ExtractionError(
            f"cannot read {path.name}: its {size / 2**20:.1f} MiB unpack to {total / 2**20:,.0f} MiB "
            f"({largest.filename}: {largest.file_size / 2**20:,.0f} MiB), over {MAX_UNZIP_RATIO}x and "
            f"{MAX_UNZIPPED_BYTES // 2**20} MiB; refused as a likely zip bomb"
        )


class _Pager:
    """Counts pages. An explicit break (or a section break) starts a page; Word's
    lastRenderedPageBreak marker also does, unless no text has come since the last break
    (Word writes that marker right after its own explicit breaks, which must not count twice)."""

    def __init__(self) -> None:
        self.page = 1
        self._fresh = True

    def break_page(self) -> None:
        self.page += 1
        self._fresh = True

    def rendered_break(self) -> None:
        if not self._fresh:
            self.break_page()

    def saw_text(self) -> None:
        self._fresh = False


def _add_paragraph(
    builder: DocumentBuilder, paragraph: Paragraph, pager: _Pager, headings: HeadingPath, new_page_after: dict[Any, bool],
    levels: dict[str, int],
) -> None:
    element = paragraph._p
    ppr = element.pPr
    if ppr is not None and ppr.find(qn("w:pageBreakBefore")) is not None and paragraph.text.strip():
        pager.break_page()
    parts: list[str] = []
    page = pager.page
    for node in element.iter(qn("w:t"), qn("w:br"), qn("w:lastRenderedPageBreak"), qn("w:tab")):
        if node.tag == qn("w:t"):
            if node.text:
                if not parts or not "".join(parts).strip():
                    page = pager.page  # the paragraph is on the page where its text starts
                parts.append(node.text)
                pager.saw_text()
        elif node.tag == qn("w:tab"):
            parts.append("\t")
        elif node.tag == qn("w:br"):
            if node.get(qn("w:type")) == "page":
                pager.break_page()
            else:
                parts.append("\n")
        else:
            pager.rendered_break()
    text = "".join(parts).strip()
    if text:
        level = levels.get(element.style or "")
        if level is not None:
            headings.enter(level, text)
            if not builder.title and level <= 1:
                builder.title = text
            builder.add(text, kind="heading", page=page, section=headings.path)
        else:
            builder.add(text, page=page, section=headings.path)
    # A section break in this paragraph's properties starts the next section on a new page,
    # unless the next section is a continuous one.
    sect = ppr.find(qn("w:sectPr")) if ppr is not None else None
    if sect is not None and new_page_after.get(sect, True):
        pager.break_page()


def _starts_new_page(sect_pr: Any) -> bool:
    kind = sect_pr.find(qn("w:type"))
    return kind is None or kind.get(qn("w:val")) != "continuous"


def _heading_levels(document: Any) -> dict[str, int]:
    """Heading level by style id ("Title" 0, "Heading N" N), read once per document: looking
    a paragraph's style up through python-docx searches the styles part every time, which
    made a 268,000-paragraph file take minutes."""
    levels = {}
    for style in document.styles:
        name = style.name or ""
        match = _HEADING_STYLE.match(name)
        if name == "Title":
            levels[style.style_id] = 0
        elif match:
            levels[style.style_id] = int(match.group(1))
    return levels


def _unique_cells(row: Any) -> list[str]:
    """Cell texts of a table row; a merged cell is reported once, not once per grid column."""
    seen: list[Any] = []
    texts = []
    for cell in row.cells:
        if any(cell._tc is s for s in seen):
            continue
        seen.append(cell._tc)
        texts.append(" ".join(cell.text.split()))
    return texts
