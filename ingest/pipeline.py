"""From paths to documents: walk folders, pick an extractor, enforce per-file budgets, and
account for every file as ingested, skipped or failed."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import IngestConfig
from .document import Document
from .errors import ExtractionError, UnsupportedFormatError
from .extract.base import Extractor, extractor_for
from .extract.docx import DocxExtractor
from .extract.markdown import MarkdownExtractor
from .extract.pdf import PdfExtractor

log = logging.getLogger(__name__)


def default_extractors() -> tuple[Extractor, ...]:
    return (PdfExtractor(), DocxExtractor(), MarkdownExtractor())


@dataclass(frozen=True, slots=True)
class IngestedFile:
    path: str
    doc_id: str
    source: str
    pages: int | None
    chunks: int
    unchanged: bool = False  # already indexed with the same bytes: nothing was done
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class FailedFile:
    path: str
    error: str


@dataclass(slots=True)
class IngestReport:
    ingested: list[IngestedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)


def discover(paths: Sequence[Path], extractors: Sequence[Extractor]) -> tuple[list[Path], list[SkippedFile]]:
    """Files to ingest (folders walked recursively, sorted, each once) and those skipped, with why.
    A path that does not exist is an error for the caller, not a skipped file."""
    suffixes = {s for e in extractors for s in e.suffixes}
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    for root in paths:
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        candidates: Iterable[Path] = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in candidates:
            if any(part.startswith(".") for part in path.relative_to(root).parts) and root.is_dir():
                continue  # hidden files and folders (.git, .citekb) are not documents
            if path.suffix.lower() in suffixes:
                files.append(path)
            else:
                skipped.append(SkippedFile(str(path), f"unsupported file type {path.suffix.lower() or '(none)'!r}"))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, skipped


def extract(path: Path, doc_id: str, cfg: IngestConfig, extractors: Sequence[Extractor]) -> Document:
    """The file's Document, or ExtractionError/UnsupportedFormatError naming the file and the reason."""
    extractor = extractor_for(path, extractors)
    size = path.stat().st_size
    if size == 0:
        raise ExtractionError(f"cannot read {path.name}: the file is empty (0 bytes)")
    if size > cfg.max_file_bytes:
        raise ExtractionError(f"cannot read {path.name}: {size / 2**20:.0f} MiB is over the {cfg.max_file_bytes / 2**20:.0f} MiB limit")
    document = extractor.extract(path, doc_id, max_chars=cfg.max_chars_per_file, ocr=cfg.ocr)
    if not document.blocks:
        raise ExtractionError(f"cannot index {path.name}: no extractable text (empty, or image-only pages that need OCR)")
    return document


__all__ = ["IngestReport", "IngestedFile", "SkippedFile", "FailedFile", "UnsupportedFormatError", "discover", "extract"]
