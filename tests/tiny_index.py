"""Building in-memory snapshots of already chunked documents, the way ingest does, for tests."""

from __future__ import annotations

from collections.abc import Iterable

from citekb.ingest.document import Chunk, Document
from citekb.retrieval.embed import Embedder
from citekb.retrieval.indexing import prepare
from citekb.retrieval.store import DocumentRecord, Snapshot


def record_for(document: Document, chunks: list[Chunk]) -> DocumentRecord:
    return DocumentRecord(doc_id=document.doc_id, source=document.source, path=f"/docs/{document.source}",
                          title=document.title, pages=document.pages, chunks=len(chunks), ingested_at=0.0,
                          warnings=list(document.warnings))


def build_snapshot(documents: Iterable[tuple[Document, list[Chunk]]], embedder: Embedder) -> Snapshot:
    snapshot = Snapshot(model_id=embedder.model_id, dim=embedder.dim)
    for document, chunks in documents:
        snapshot.add(record_for(document, chunks), chunks, prepare(chunks, embedder))
    return snapshot
