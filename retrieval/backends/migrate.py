"""Moving an index between stores (the index directory, Milvus) without embedding anything
again: export writes a portable folder, import builds the target store from it.

    EXPORT/
      manifest.json     format, embedding model and dimension, analyzer, counts, source backend
      documents.jsonl   one DocumentRecord per line
      chunks.jsonl      one chunk per line (store.chunk_to_json), in row order
      vectors.npy       float32 [vectors, dim]: the dense vectors, as the source store holds them
      owners.npy        int64 [vectors]: the chunk row each vector belongs to

Vectors travel as they are. The keyword leg is rebuilt from the chunks' text by the target
(analysis is cheap and deterministic; the analyzer version must match). The directory index
holds one vector per sentence and Milvus one per chunk (their mean), so a move to Milvus and
back brings one vector per chunk."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from citekb.ingest.document import Chunk
from citekb.ingest.errors import ConfigError, IndexMismatchError
from numpy.typing import NDArray
from tqdm import tqdm

from ..analyze import analyze
from ..indexing import ChunkRows, index_text
from ..store import ANALYZER, DocumentRecord, Snapshot, chunk_from_json, chunk_to_json

FORMAT = "citekb-export-1"


@dataclass(frozen=True, slots=True)
class MigrationReport:
    documents: int
    chunks: int
    vectors: int
    model_id: str


def export_index(store: Any, dest: Path, expect_model_id: str | None = None, show_progress: bool = False) -> MigrationReport:
    """Write the live index of store (IndexStore or MilvusStore) to the folder dest, which must
    not exist yet or be empty."""
    if dest.exists() and any(dest.iterdir()):
        raise ConfigError(f"export folder {dest} is not empty; choose a new folder")
    snapshot = store.load(expect_model_id=expect_model_id)
    dest.mkdir(parents=True, exist_ok=True)
    chunks: list[Chunk] = []
    if isinstance(snapshot, Snapshot):
        chunks = snapshot.chunks
        vectors = snapshot.dense.vectors()
        owners = np.asarray(snapshot.dense._owner, np.int64)  # noqa: SLF001 (the dense index of the same stage)
    else:
        held = []
        for c, vector in tqdm(snapshot.chunks.with_vectors(), desc="export", unit="chunk", disable=not show_progress,
                              file=sys.stderr, leave=False):
            chunks.append(c)
            held.append(vector)
        vectors = np.stack(held) if held else np.zeros((0, snapshot.dim), np.float32)
        owners = np.arange(len(held), dtype=np.int64)
    with (dest / "documents.jsonl").open("w", encoding="utf-8") as f:
        for record in snapshot.documents.values():
            f.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
    with (dest / "chunks.jsonl").open("w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps(chunk_to_json(c), ensure_ascii=False) + "\n")
    np.save(dest / "vectors.npy", np.ascontiguousarray(vectors, np.float32))
    np.save(dest / "owners.npy", owners)
    report = MigrationReport(len(snapshot.documents), len(chunks), len(vectors), snapshot.model_id)
    manifest = {"format": FORMAT, "embedding": {"model_id": snapshot.model_id, "dim": snapshot.dim}, "analyzer": ANALYZER,
                "counts": {"documents": report.documents, "chunks": report.chunks, "vectors": report.vectors},
                "source": type(store).__name__}
    # Last, as in the index directory: a folder without a manifest is an unfinished export.
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1), "utf-8")
    return report


def import_index(store: Any, src: Path, expect_model_id: str | None = None, replace: bool = False,
                 show_progress: bool = False) -> MigrationReport:
    """Build store's index from the export folder src. An existing index is an error unless
    replace; the index directory swaps it atomically, Milvus drops its collections first."""
    manifest = _read_manifest(src)
    model_id, dim = manifest["embedding"]["model_id"], int(manifest["embedding"]["dim"])
    if expect_model_id is not None and model_id != expect_model_id:
        raise IndexMismatchError(f"export {src} holds vectors of embedding model {model_id!r}, not {expect_model_id!r}; "
                                 f"set CITEKB_EMBEDDING_MODEL={model_id} to import it")
    vectors = np.load(src / "vectors.npy", mmap_mode="r")
    owners = np.load(src / "owners.npy")
    if vectors.shape != (len(owners), dim):
        raise IndexMismatchError(f"export {src} is damaged: vectors.npy is {vectors.shape}, expected ({len(owners)}, {dim})")
    with store.writer():
        if store.exists and not replace:
            raise ConfigError("the target already holds an index; import into an empty one, or pass --replace to overwrite it")
        if replace and hasattr(store, "drop"):
            store.drop()
        snapshot = store.create(model_id, dim)
        chunks = _read_chunks(src)
        order = np.argsort(owners, kind="stable")
        starts = np.searchsorted(owners[order], np.arange(len(chunks) + 1))
        by_doc: dict[str, list[int]] = {}
        for row, c in enumerate(chunks):
            by_doc.setdefault(c.locator.doc_id, []).append(row)
        documents = 0
        for record in tqdm(_read_records(src), desc="import", unit="doc", disable=not show_progress, file=sys.stderr, leave=False):
            rows = by_doc.pop(record.doc_id, [])
            snapshot.add(record, [chunks[r] for r in rows], _rows(chunks, rows, vectors, order, starts))
            documents += 1
        if by_doc:
            raise IndexMismatchError(f"export {src} is damaged: chunks of unknown documents {sorted(by_doc)[:3]}")
        store.publish(snapshot)
    return MigrationReport(documents, len(chunks), len(owners), model_id)


def _rows(chunks: list[Chunk], rows: list[int], vectors: NDArray[np.float32], order: NDArray[np.int64],
          starts: NDArray[np.int64]) -> ChunkRows:
    units = [order[starts[r]:starts[r + 1]] for r in rows]
    picked = np.concatenate(units) if units else np.zeros(0, np.int64)
    return ChunkRows(vectors=np.asarray(vectors[picked], np.float32),
                     owners=np.repeat(np.arange(len(rows)), [len(u) for u in units]).astype(np.int64),
                     terms=[analyze(index_text(chunks[r])) for r in rows])


def _read_manifest(src: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((src / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{src} is not a citekb export (no readable manifest.json: {exc})") from exc
    if manifest.get("format") != FORMAT:
        raise IndexMismatchError(f"{src} has export format {manifest.get('format')!r}; this citekb reads {FORMAT}")
    if manifest.get("analyzer") != ANALYZER:
        raise IndexMismatchError(f"{src} was exported by a citekb with another text analyzer; re-ingest the documents instead")
    return manifest


def _read_chunks(src: Path) -> list[Chunk]:
    with (src / "chunks.jsonl").open(encoding="utf-8") as f:
        return [chunk_from_json(json.loads(line)) for line in f]


def _read_records(src: Path) -> Iterator[DocumentRecord]:
    with (src / "documents.jsonl").open(encoding="utf-8") as f:
        for line in f:
            yield DocumentRecord(**json.loads(line))
