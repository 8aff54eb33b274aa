"""Identifiers. A doc_id is derived from the file's bytes only, never from its path or the
time of ingestion, so ingesting the same file twice (or from another folder) changes nothing,
and a changed file gets a new id whose chunks replace the old ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

DOC_ID_LENGTH = 16  # hex digits of sha256: 64 bits, collision-free at any realistic corpus size


def doc_id_for_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DOC_ID_LENGTH]


def doc_id_for_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:DOC_ID_LENGTH]


def chunk_id(doc_id: str, ordinal: int) -> str:
    return f"{doc_id}:{ordinal}"
