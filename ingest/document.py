"""The data types of ingestion: where text came from (Locator), what an extractor emits
(Block, Document) and what gets indexed (Chunk)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class BBox:
    """A box on a PDF page in PDF points, origin top-left (pdfplumber's convention)."""

    page: int
    x0: float
    top: float
    x1: float
    bottom: float


@dataclass(frozen=True, slots=True)
class Locator:
    """Where a span came from. Pages and lines are 1-based and inclusive."""

    doc_id: str
    source: str  # file name as ingested
    title: str
    page: int | None = None  # None for Markdown
    page_end: int | None = None
    section: tuple[str, ...] = ()  # heading path, outermost first
    line_start: int | None = None  # Markdown only
    line_end: int | None = None
    char_start: int = 0  # offsets into the document's text
    char_end: int = 0
    bboxes: tuple[BBox, ...] = ()  # PDF only, for the viewer's highlight

    @property
    def section_path(self) -> str:
        """The heading path as one string, "Title > Section 2"."""
        return " > ".join(self.section)


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph, heading, list item or table of a document, on one page."""

    text: str
    locator: Locator
    kind: str = "paragraph"  # "paragraph" | "heading" | "table"


@dataclass(frozen=True, slots=True)
class Document:
    """What an extractor returns: the blocks in reading order, and how many pages the file has."""

    doc_id: str
    source: str
    title: str
    blocks: tuple[Block, ...]
    pages: int | None = None  # None for formats without pages (Markdown)
    warnings: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        """The document's text: blocks joined by blank lines; char offsets refer to this."""
        return "\n\n".join(b.text for b in self.blocks)


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of a chunk's text that comes from one block: [start, end) in Chunk.text."""

    start: int
    end: int
    page: int | None
    line_start: int | None
    line_end: int | None
    kind: str = "paragraph"  # the block's kind: an answer never quotes a bare "heading"


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str  # f"{doc_id}:{ordinal}", stable across re-ingests of the same bytes
    text: str
    locator: Locator  # covers its blocks: page..page_end, line_start..line_end
    spans: tuple[Span, ...] = ()  # per block, so a quoted sentence can be narrowed to its page and lines

    def locate(self, start: int, end: int) -> Locator:
        """The locator of Chunk.text[start:end]: the chunk's, narrowed to the blocks that span overlaps."""
        inside = [s for s in self.spans if s.start < end and start < s.end] or list(self.spans)
        if not inside:
            return self.locator
        pages = {s.page for s in inside}
        return replace(
            self.locator,
            **covering(inside),
            char_start=self.locator.char_start + inside[0].start,
            char_end=self.locator.char_start + inside[-1].end,
            bboxes=tuple(b for b in self.locator.bboxes if b.page in pages),
        )


def covering(parts: Sequence[Span | Locator]) -> dict[str, int | None]:
    """page..page_end and line_start..line_end covering every part (None where none has one)."""
    pages = [p.page for p in parts if p.page is not None]
    firsts = [p.line_start for p in parts if p.line_start is not None]
    lasts = [p.line_end for p in parts if p.line_end is not None]
    return {
        "page": min(pages) if pages else None,
        "page_end": max(pages) if pages else None,
        "line_start": min(firsts) if firsts else None,
        "line_end": max(lasts) if lasts else None,
    }
