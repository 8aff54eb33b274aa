"""Checking an index snapshot file by file, and rebuilding the parts that are missing or wrong.

Snapshot.load refuses a damaged snapshot as a whole. Here each file is read on its own, so a
report can name the damaged part, and a repair can keep the parts that are sound. The chunks
(chunks.jsonl) and the document records (docs.json) are the ground truth. The keyword index is
rebuilt from the chunks' text, the dense index by embedding them again, and a document whose
chunks are incomplete is dropped so that its file can be ingested again."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from citekb.ingest.document import Chunk
from citekb.ingest.errors import CitekbError, IndexMismatchError
from citekb.ingest.ids import doc_id_for_file

from .analyze import analyze
from .dense import FaissIndex
from .embed import Embedder
from .indexing import index_text, prepare
from .keyword import Bm25Index
from .store import ANALYZER, FORMAT_VERSION, DocumentRecord, Snapshot, chunk_from_json

log = logging.getLogger(__name__)

# Problems that describe the files on disk rather than the index: ingest (with --sync) fixes
# them; repair leaves them alone.
FILE_KINDS = frozenset({"file-changed", "file-missing"})
# Problems repair cannot fix: the index was built by another model or another citekb.
FOREIGN_KINDS = frozenset({"model", "format"})
_EMBED_BATCH_CHUNKS = 1024  # chunks embedded per call when re-embedding, to bound memory


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # "snapshot" "manifest" "chunks" "documents" "dense" "keyword" "counts" "orphan-chunks"
    #            "document-chunks" "model" "format" "file-changed" "file-missing"
    message: str
    doc_id: str | None = None
    path: str | None = None

    @property
    def repairable(self) -> bool:
        return self.kind not in FILE_KINDS | FOREIGN_KINDS


@dataclass
class SnapshotParts:
    """The files of one snapshot directory, each read on its own; None where unreadable."""

    directory: Path
    manifest: dict[str, Any] | None
    documents: dict[str, DocumentRecord] | None
    chunks: list[Chunk]  # the readable lines of chunks.jsonl, in order
    lines: list[int]  # the line (0-based) each chunk came from: its row in the dense and keyword indexes
    line_count: int  # lines in chunks.jsonl, readable or not
    dense: FaissIndex | None
    keyword: Bm25Index | None
    problems: list[Problem] = field(default_factory=list)  # what could not be read


def read_parts(directory: Path) -> SnapshotParts:
    """Every file of the snapshot that can be read; a problem for each that cannot. Never raises
    because a file is damaged."""
    problems: list[Problem] = []
    if not directory.is_dir():
        problems.append(Problem("snapshot", f"the live snapshot {directory} does not exist"))
        return SnapshotParts(directory, None, None, [], [], 0, None, None, problems)

    def attempt(kind: str, what: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        # The boundary of reading one file of a damaged snapshot: whatever a truncated npz,
        # FAISS file or JSON document raises, the file is unreadable, and that is the report.
        except Exception as exc:
            problems.append(Problem(kind, f"{what} in {directory} is unreadable: {type(exc).__name__}: {exc}"))
            return None

    manifest = attempt("manifest", "manifest.json", lambda: json.loads((directory / "manifest.json").read_text("utf-8")))
    if manifest is not None and not isinstance(manifest, dict):
        problems.append(Problem("manifest", f"manifest.json in {directory} is not a JSON object"))
        manifest = None
    raw_docs = attempt("documents", "docs.json", lambda: json.loads((directory / "docs.json").read_text("utf-8")))
    documents = None
    if raw_docs is not None:
        documents = attempt("documents", "docs.json", lambda: {d: DocumentRecord(**r) for d, r in raw_docs.items()})
    chunks: list[Chunk] = []
    lines: list[int] = []
    text = attempt("chunks", "chunks.jsonl", lambda: (directory / "chunks.jsonl").read_text("utf-8"))
    line_count = 0
    if text is not None:
        raw_lines = text.splitlines()
        line_count = len(raw_lines)
        bad = []
        for i, line in enumerate(raw_lines):
            try:
                chunks.append(chunk_from_json(json.loads(line)))
                lines.append(i)
            except (ValueError, KeyError, TypeError):
                bad.append(i + 1)
        if bad:
            problems.append(Problem("chunks", f"chunks.jsonl in {directory} has {len(bad)} unreadable "
                                              f"line(s) (first: line {bad[0]}): truncated or damaged"))
    dense = attempt("dense", "the dense index (dense.faiss, dense_rows.npz)", lambda: FaissIndex.load(directory))
    keyword = attempt("keyword", "the keyword index (bm25.json, bm25_tf.npz)", lambda: Bm25Index.load(directory))
    return SnapshotParts(directory, manifest, documents, chunks, lines, line_count, dense, keyword, problems)


def check_parts(parts: SnapshotParts, expect_model_id: str | None = None) -> list[Problem]:
    """Everything wrong inside the snapshot: unreadable files, stores whose row counts differ from
    the chunks, chunks of unknown documents, and documents whose chunk count is off."""
    problems = list(parts.problems)
    n = len(parts.chunks)
    manifest = parts.manifest
    if manifest is not None:
        if manifest.get("format_version") != FORMAT_VERSION:
            problems.append(Problem("format", f"format version {manifest.get('format_version')}; this citekb "
                                              f"reads {FORMAT_VERSION}: re-ingest into a new index"))
        if manifest.get("analyzer") != ANALYZER:
            problems.append(Problem("keyword", f"keyword index built with analyzer {manifest.get('analyzer')!r}, "
                                               f"not {ANALYZER!r}"))
        embedding = manifest.get("embedding", {})
        if expect_model_id is not None and embedding.get("model_id") != expect_model_id:
            problems.append(Problem("model", f"built with embedding model {embedding.get('model_id')!r}, not "
                                             f"{expect_model_id!r}: use the same model or re-ingest into a new index"))
        if parts.dense is not None and parts.dense.dim != embedding.get("dim"):
            problems.append(Problem("dense", f"dense vectors have {parts.dense.dim} dimensions, the manifest says {embedding.get('dim')}"))
        counts = manifest.get("counts", {})
        if counts.get("chunks") != n:
            problems.append(Problem("counts", f"the manifest counts {counts.get('chunks')} chunks, chunks.jsonl holds {n}"))
        if parts.documents is not None and counts.get("documents") != len(parts.documents):
            problems.append(Problem("counts", f"the manifest counts {counts.get('documents')} documents, "
                                              f"docs.json holds {len(parts.documents)}"))
    for store, kind in ((parts.dense, "dense"), (parts.keyword, "keyword")):
        if store is not None and len(store) != n:
            problems.append(Problem(kind, f"the {kind} index has {len(store)} rows for {n} chunks"))
    duplicates = [cid for cid, count in Counter(c.chunk_id for c in parts.chunks).items() if count > 1]
    if duplicates:
        problems.append(Problem("chunks", f"{len(duplicates)} chunk id(s) occur more than once (first: {duplicates[0]})"))
    if parts.documents is not None:
        per_doc = Counter(c.locator.doc_id for c in parts.chunks)
        for doc_id, count in sorted(per_doc.items()):
            if doc_id not in parts.documents:
                problems.append(Problem("orphan-chunks", f"{count} chunk(s) of unknown document {doc_id}", doc_id=doc_id))
        for doc_id, record in sorted(parts.documents.items()):
            if per_doc.get(doc_id, 0) != record.chunks:
                problems.append(Problem("document-chunks", f"{record.source} ({doc_id}) should have {record.chunks} "
                                                           f"chunk(s), the index holds {per_doc.get(doc_id, 0)}",
                                        doc_id=doc_id, path=record.path))
    return problems


def check_files(documents: Iterable[DocumentRecord]) -> list[Problem]:
    """Documents whose file has changed (its bytes hash to another doc_id) or is gone."""
    problems = []
    for record in sorted(documents, key=lambda r: r.path):
        path = Path(record.path)
        if not path.is_file():
            problems.append(Problem("file-missing", f"{record.path} ({record.doc_id}) no longer exists",
                                    doc_id=record.doc_id, path=record.path))
        elif doc_id_for_file(path) != record.doc_id:
            problems.append(Problem("file-changed", f"{record.path} changed since it was ingested as {record.doc_id}",
                                    doc_id=record.doc_id, path=record.path))
    return problems


@dataclass
class Rebuilt:
    """A consistent snapshot made from a damaged one, and what it took."""

    snapshot: Snapshot
    actions: list[str]  # one line per thing rebuilt or dropped
    incomplete: list[DocumentRecord]  # documents dropped because their chunks were not all there


def rebuild(parts: SnapshotParts, model_id: str, embedder: Callable[[], Embedder]) -> Rebuilt:
    """A consistent snapshot from what parts holds. The chunks and document records are kept
    where they agree; a store whose rows do not line up with chunks.jsonl is rebuilt, the dense
    one with embedder() (called only then). Raises when docs.json is unreadable or the
    snapshot was made by another model or format."""
    if parts.documents is None:
        reason = next(p.message for p in parts.problems if p.kind in ("snapshot", "documents"))
        raise CitekbError(f"cannot repair: {reason}, so which documents the index holds is unknown; "
                          f"re-ingest the documents into a new index")
    manifest = parts.manifest
    if manifest is not None:
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(f"cannot repair {parts.directory}: format version {manifest.get('format_version')}, "
                                     f"this citekb reads {FORMAT_VERSION}; re-ingest into a new index")
        if manifest.get("embedding", {}).get("model_id") != model_id:
            raise IndexMismatchError(f"cannot repair {parts.directory}: built with embedding model "
                                     f"{manifest.get('embedding', {}).get('model_id')!r}, not {model_id!r}")
    actions: list[str] = []
    by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(parts.chunks):
        by_doc.setdefault(c.locator.doc_id, []).append(i)
    keep: list[int] = []  # positions in parts.chunks
    documents: dict[str, DocumentRecord] = {}
    incomplete: list[DocumentRecord] = []
    for doc_id, positions in by_doc.items():
        if doc_id not in parts.documents:
            actions.append(f"dropped {len(positions)} chunk(s) of unknown document {doc_id}")
    for doc_id, record in parts.documents.items():
        positions = by_doc.get(doc_id, [])
        # Ordinals 0..n-1, each once: a chunk lost in the middle is caught, not only a count that is off.
        if [parts.chunks[i].chunk_id for i in positions] != [f"{doc_id}:{k}" for k in range(record.chunks)]:
            actions.append(f"dropped {record.source} ({doc_id}): {len(positions)} of its {record.chunks} chunk(s) remain")
            incomplete.append(record)
            continue
        documents[doc_id] = record
        keep.extend(positions)
    keep.sort()
    chunks = [parts.chunks[i] for i in keep]
    rows = np.asarray([parts.lines[i] for i in keep], np.int64)  # their rows in the old stores
    recorded_dim = manifest.get("embedding", {}).get("dim") if manifest is not None else None
    dim = int(recorded_dim) if recorded_dim is not None else embedder().dim

    snapshot = Snapshot(model_id=model_id, dim=dim, chunks=chunks, documents=documents)
    # A store is reused only if its rows line up with chunks.jsonl's lines, which it does when
    # it has one row per line. Without a manifest nothing says which model made the vectors.
    dense = parts.dense
    if dense is not None and manifest is not None and len(dense) == parts.line_count and dense.dim == dim:
        dense.keep(rows)
        snapshot.dense = dense
    else:
        snapshot.dense = _embed_again(chunks, embedder(), dim)
        actions.append(f"re-embedded {len(chunks)} chunk(s) into a new dense index")
    keyword = parts.keyword
    if keyword is not None and manifest is not None and manifest.get("analyzer") == ANALYZER and len(keyword) == parts.line_count:
        keyword.keep(rows)
        snapshot.keyword = keyword
    else:
        snapshot.keyword = Bm25Index()
        snapshot.keyword.add([analyze(index_text(c)) for c in chunks])
        actions.append(f"rebuilt the keyword index from the text of {len(chunks)} chunk(s)")
    return Rebuilt(snapshot, actions, incomplete)


def _embed_again(chunks: list[Chunk], embedder: Embedder, dim: int) -> FaissIndex:
    if embedder.dim != dim:
        raise IndexMismatchError(f"cannot re-embed: the embedder makes {embedder.dim}-dimensional vectors, the index holds {dim}")
    dense = FaissIndex(dim)
    for start in range(0, len(chunks), _EMBED_BATCH_CHUNKS):
        batch = chunks[start:start + _EMBED_BATCH_CHUNKS]
        rows = prepare(batch, embedder)
        dense.add(rows.vectors, rows.owners, len(batch))
    return dense
