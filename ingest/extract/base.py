"""The Extractor contract, the builder extractors share, and the table that picks one by suffix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..document import BBox, Block, Document, Locator
from ..errors import ExtractionError, UnsupportedFormatError


class Extractor(Protocol):
    suffixes: tuple[str, ...]

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        """The file's blocks in reading order; raises ExtractionError when it cannot be read or
        holds more than max_chars characters of text (checked as it goes, so a decompression
        bomb is stopped early rather than read whole). ocr: whether pictures of text (scanned
        pages) may be read by OCR; formats without such pages ignore it."""
        ...


_progress_hook: Callable[[str], None] | None = None


def set_progress_hook(hook: Callable[[str], None] | None) -> None:
    """Who hears report_progress(): the extraction worker's child sets one that tells the parent
    the file is still moving (see ingest/worker.py); elsewhere nobody listens."""
    global _progress_hook
    _progress_hook = hook


def report_progress(what: str) -> None:
    """An extractor calls this after each unit of slow work (a PDF page, an OCR'd picture), so
    a per-file time limit can tell a long file that advances from one that is stuck."""
    if _progress_hook is not None:
        _progress_hook(what)


@dataclass
class DocumentBuilder:
    """Collects blocks while an extractor walks a file, then fixes titles and character offsets.

    The title is often only known once the first heading has been seen, so blocks are kept
    as plain fields until build()."""

    doc_id: str
    source: str
    title: str = ""
    max_chars: int | None = None
    _chars: int = 0
    _rows: list[tuple[str, str, int | None, tuple[str, ...], int | None, int | None, tuple[BBox, ...]]] = field(
        default_factory=list
    )
    warnings: list[str] = field(default_factory=list)

    def add(
        self,
        text: str,
        *,
        kind: str = "paragraph",
        page: int | None = None,
        section: Sequence[str] = (),
        line_start: int | None = None,
        line_end: int | None = None,
        bboxes: Sequence[BBox] = (),
    ) -> None:
        text = text.strip()
        if text:
            self._chars += len(text)
            if self.max_chars is not None and self._chars > self.max_chars:
                raise ExtractionError(f"cannot index {self.source}: more than {self.max_chars:,} characters of text (the per-file limit)")
            self._rows.append((text, kind, page, tuple(section), line_start, line_end, tuple(bboxes)))

    def build(self, pages: int | None, fallback_title: str) -> Document:
        title = self.title or fallback_title
        blocks = []
        offset = 0
        for text, kind, page, section, line_start, line_end, bboxes in self._rows:
            locator = Locator(
                doc_id=self.doc_id,
                source=self.source,
                title=title,
                page=page,
                page_end=page,
                section=section,
                line_start=line_start,
                line_end=line_end,
                char_start=offset,
                char_end=offset + len(text),
                bboxes=bboxes,
            )
            blocks.append(Block(text=text, locator=locator, kind=kind))
            offset += len(text) + 2  # Document.text joins blocks with a blank line
        return Document(
            doc_id=self.doc_id,
            source=self.source,
            title=title,
            blocks=tuple(blocks),
            pages=pages,
            warnings=tuple(self.warnings),
        )


class HeadingPath:
    """The current heading path: a heading of level n replaces everything at level n and below."""

    def __init__(self) -> None:
        self._levels: list[tuple[int, str]] = []

    def enter(self, level: int, text: str) -> None:
        self._levels = [(lv, t) for lv, t in self._levels if lv < level]
        self._levels.append((level, text))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self._levels)


def extractor_for(path: Path, extractors: Sequence[Extractor]) -> Extractor:
    suffix = path.suffix.lower()
    for extractor in extractors:
        if suffix in extractor.suffixes:
            return extractor
    known = sorted(s for e in extractors for s in e.suffixes)
    raise UnsupportedFormatError(f"{path.name}: unsupported file type {suffix or '(none)'!r}; citekb reads {', '.join(known)}")
