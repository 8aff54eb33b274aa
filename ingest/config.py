"""Configuration of ingestion."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    target_tokens: int = 300  # a chunk closes once adding the next piece would pass this
    overlap_tokens: int = 40  # trailing sentences of a chunk repeated at the start of the next
    # One block (paragraph, table) larger than this is cut at sentence boundaries.
    max_block_tokens: int = 300

    def __post_init__(self) -> None:
        if self.target_tokens < 16:
            raise ConfigError(f"chunk target_tokens must be at least 16, got {self.target_tokens}")
        if not 0 <= self.overlap_tokens < self.target_tokens:
            raise ConfigError(f"chunk overlap_tokens must be in [0, target_tokens), got {self.overlap_tokens}")
        if self.max_block_tokens < 16:
            raise ConfigError(f"chunk max_block_tokens must be at least 16, got {self.max_block_tokens}")


@dataclass(frozen=True, slots=True)
class IngestConfig:
    chunking: ChunkingConfig = ChunkingConfig()
    max_file_bytes: int = 200 * 1024 * 1024  # larger files are refused before parsing
    max_chars_per_file: int = 5_000_000  # extracted text beyond this is refused, not silently cut
    ocr: bool = True  # read PDF pages that have no text layer (scans) by OCR
    # Limits of the extraction worker (ingest/worker.py) per file: timeout_s without progress
    # (a PDF reports each page it finishes; OCR takes several seconds a page on a laptop CPU),
    # and max_file_s in all.
    timeout_s: float = 60.0
    max_file_s: float = 1800.0
    max_memory_mb: int = 2048  # address space, not resident memory: OCR alone maps ~1.2 GiB

    def __post_init__(self) -> None:
        if self.max_file_bytes <= 0 or self.max_chars_per_file <= 0:
            raise ConfigError("max_file_bytes and max_chars_per_file must be positive")
        if self.timeout_s <= 0 or self.max_file_s <= 0:
            raise ConfigError(f"timeout_s and max_file_s must be positive, got {self.timeout_s} and {self.max_file_s}")
        if self.max_memory_mb < 256:
            raise ConfigError(f"max_memory_mb must be at least 256 (the worker itself needs ~100), got {self.max_memory_mb}")
