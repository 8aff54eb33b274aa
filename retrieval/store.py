"""The index directory: snapshots written aside and published by an atomic rename.

    INDEX/
      CURRENT            name of the live snapshot (replaced atomically with os.replace)
      .lock              held by the one writer (ingest, delete)
      snapshots/<name>/  manifest.json, docs.json, chunks.jsonl, dense.faiss, bm25_tf.npz, bm25.json

A reader loads the snapshot CURRENT names and keeps it in memory; a writer builds a complete
new snapshot beside it and only then points CURRENT at it, so a crash at any moment leaves the
last committed snapshot whole. What a crash can leave behind is harmless: a `.tmp-*` staging
folder or an unpublished snapshot is never named by CURRENT and is removed by the next publish,
and a stale CURRENT.tmp is never read and is overwritten by the next publish."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from citekb.ingest.document import BBox, Chunk, Locator, Span
from citekb.ingest.errors import CitekbError, ConfigError, DocumentNotFoundError, IndexMismatchError, IndexNotFoundError

from .config import DenseIndexConfig
from .dense import FaissIndex
from .indexing import ChunkRows
from .keyword import Bm25Index

if TYPE_CHECKING:
    from .config import RetrievalConfig
    from .embed import Embedder
    from .rerank import Reranker
    from .search import HybridSearcher

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ANALYZER = "citekb-analyze-1"  # bump when retrieval/analyze.py changes the terms it emits
# Reads of CURRENT's snapshot before giving up. Each retry follows a publish that happened
# during the read; one is nearly always enough, a few cover a writer publishing back to back.
_READ_ATTEMPTS = 5

T = TypeVar("T")


@dataclass(slots=True)
class DocumentRecord:
    """What the index knows of one ingested file."""

    doc_id: str
    source: str  # file name
    path: str  # where it was ingested from (absolute), so a changed file replaces its old version
    title: str
    pages: int | None
    chunks: int
    ingested_at: float
    warnings: list[str] = field(default_factory=list)
    # Access groups: who may read its chunks. Empty: everyone who may read the index. Indexes
    # written before groups existed have no "groups" in docs.json and load as empty.
    groups: list[str] = field(default_factory=list)


GROUP_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_groups(groups: Iterable[str]) -> list[str]:
    """groups sorted and deduplicated; ConfigError for a name that is not 1-64 letters, digits, _ . -."""
    out = sorted(set(groups))
    for group in out:
        if not GROUP_PATTERN.fullmatch(group):
            raise ConfigError(f"invalid access group {group!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return out


def readable_by(record: DocumentRecord, groups: AbstractSet[str] | None) -> bool:
    """Whether a reader in groups may read record's chunks: groups None reads everything; a
    document without groups is readable by all, one with groups by a reader sharing one."""
    return groups is None or not record.groups or not groups.isdisjoint(record.groups)


@dataclass
class Snapshot:
    """An index held in memory: chunks, their documents, and both search structures, row-aligned."""

    model_id: str
    dim: int
    chunks: list[Chunk] = field(default_factory=list)
    documents: dict[str, DocumentRecord] = field(default_factory=dict)
    dense: FaissIndex = field(init=False)
    keyword: Bm25Index = field(default_factory=Bm25Index)
    created: float = field(default_factory=time.time)
    # (chunks list, its length, doc_ids, row -> doc_id position): see _row_documents.
    _rows_cache: tuple[list[Chunk], int, list[str], NDArray[np.intp]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.dense = FaissIndex(self.dim)

    def add(self, record: DocumentRecord, chunks: Sequence[Chunk], rows: ChunkRows) -> None:
        if record.doc_id in self.documents:
            self.remove(record.doc_id)
        if len(chunks) != len(rows.terms):
            raise ValueError("chunks and their index rows must be aligned")
        self.dense.add(rows.vectors, rows.owners, len(chunks))
        self._rows_cache = None
        self.chunks.extend(chunks)
        self.keyword.add(rows.terms)
        self.documents[record.doc_id] = record

    def remove(self, doc_id: str) -> DocumentRecord:
        record = self.documents.pop(doc_id, None)
        if record is None:
            raise DocumentNotFoundError(f"no document with doc_id {doc_id!r} in the index")
        keep = np.array([i for i, c in enumerate(self.chunks) if c.locator.doc_id != doc_id], dtype=np.int64)
        self._rows_cache = None
        self.chunks = [self.chunks[i] for i in keep]
        self.dense.keep(keep)
        self.keyword.keep(keep)
        return record

    def readable(self, groups: AbstractSet[str] | None) -> NDArray[np.bool_] | None:
        """The row mask for a reader in groups (see readable_by); None when it may read every row.

        Who may read a document is decided afresh on every call, from the records as they are
        now (ingest regroups a record in place), one test per document; only which document
        each row belongs to is kept between calls (_row_documents), so a mask costs a pass over
        the documents and one gather, not a pass over every chunk in Python."""
        if groups is None:
            return None
        doc_ids, row_document = self._row_documents()
        documents = self.documents
        allowed = np.fromiter((d in documents and readable_by(documents[d], groups) for d in doc_ids),
                              dtype=np.bool_, count=len(doc_ids))
        if allowed.all():
            return None
        return allowed[row_document]

    def _row_documents(self) -> tuple[list[str], NDArray[np.intp]]:
        """The doc_ids of the rows' documents, and each row's position in that list. Kept while
        self.chunks is the same list of the same length: every change of rows replaces the list
        (remove, relocate, load) or lengthens it (add), and add and remove also drop it."""
        cached = self._rows_cache
        if cached is not None and cached[0] is self.chunks and cached[1] == len(self.chunks):
            return cached[2], cached[3]
        chunks = self.chunks
        codes: dict[str, int] = {}
        row_document = np.fromiter((codes.setdefault(c.locator.doc_id, len(codes)) for c in chunks),
                                   dtype=np.intp, count=len(chunks))
        doc_ids = list(codes)
        self._rows_cache = (chunks, len(chunks), doc_ids, row_document)
        return doc_ids, row_document

    def find_path(self, path: str) -> DocumentRecord | None:
        return next((r for r in self.documents.values() if r.path == path), None)

    def under(self, folder: Path) -> list[DocumentRecord]:
        """The documents ingested from files inside folder (an absolute path), at any depth."""
        return [r for r in self.documents.values() if Path(r.path).is_relative_to(folder)]

    def relocate(self, doc_id: str, path: Path) -> DocumentRecord:
        """Record that doc_id's file now lives at path (moved or renamed, same bytes): its record
        and its chunks' source name follow; nothing is re-extracted or re-embedded."""
        record = self.documents.get(doc_id)
        if record is None:
            raise DocumentNotFoundError(f"no document with doc_id {doc_id!r} in the index")
        record.path, record.source = str(path), path.name
        self.chunks = [replace(c, locator=replace(c.locator, source=path.name)) if c.locator.doc_id == doc_id else c
                       for c in self.chunks]
        return record

    def manifest(self) -> dict[str, Any]:
        import faiss

        from citekb import __version__

        return {
            "format_version": FORMAT_VERSION,
            "embedding": {"model_id": self.model_id, "dim": self.dim},
            "analyzer": ANALYZER,
            "counts": {"documents": len(self.documents), "chunks": len(self.chunks)},
            "versions": {"citekb": __version__, "faiss": faiss.__version__},
            "created": self.created,
        }

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        self.dense.save(directory)
        self.keyword.save(directory)
        with (directory / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for chunk in self.chunks:
                f.write(json.dumps(chunk_to_json(chunk), ensure_ascii=False) + "\n")
        docs = {doc_id: asdict(r) for doc_id, r in self.documents.items()}
        (directory / "docs.json").write_text(json.dumps(docs, ensure_ascii=False, indent=1), "utf-8")
        # The manifest goes last: a snapshot without one is unfinished and never published.
        (directory / "manifest.json").write_text(json.dumps(self.manifest(), indent=1), "utf-8")

    @classmethod
    def load(cls, directory: Path, expect_model_id: str | None = None) -> Snapshot:
        manifest = read_manifest(directory)
        model_id = manifest["embedding"]["model_id"]
        if expect_model_id is not None and model_id != expect_model_id:
            raise IndexMismatchError(
                f"index {directory.parent.parent} was built with embedding model {model_id!r}, "
                f"not {expect_model_id!r}; re-ingest into a new index or use the same model"
            )
        snap = cls(model_id=model_id, dim=int(manifest["embedding"]["dim"]), created=manifest.get("created", 0.0))
        snap.dense = FaissIndex.load(directory)
        snap.keyword = Bm25Index.load(directory)
        with (directory / "chunks.jsonl").open(encoding="utf-8") as f:
            snap.chunks = [chunk_from_json(json.loads(line)) for line in f]
        docs = json.loads((directory / "docs.json").read_text("utf-8"))
        snap.documents = {doc_id: DocumentRecord(**r) for doc_id, r in docs.items()}
        counts = manifest["counts"]
        if not (len(snap.chunks) == len(snap.dense) == len(snap.keyword) == counts["chunks"]):
            raise IndexMismatchError(f"index snapshot {directory} is inconsistent: chunk counts of its stores differ")
        return snap


@contextlib.contextmanager
def exclusive_lock(lock_file: Path, busy: CitekbError) -> Iterator[None]:
    """Hold an exclusive lock on lock_file (created if need be) for the block; raises busy at
    once, without waiting, when another process holds it."""
    with lock_file.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"index snapshot {directory} has no readable manifest: {exc}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index {directory.parent.parent} has format version {manifest.get('format_version')}, "
            f"this citekb reads {FORMAT_VERSION}; re-ingest the documents into a new index"
        )
    if manifest.get("analyzer") != ANALYZER:
        raise IndexMismatchError(f"index {directory.parent.parent} was built with another text analyzer; re-ingest")
    return manifest


class IndexStore:
    """Finds, locks and publishes the snapshots of one index directory."""

    def __init__(self, root: Path, dense: DenseIndexConfig | None = None) -> None:
        self.root = root
        self.dense = dense or DenseIndexConfig()  # when the snapshots' dense index is approximate

    @property
    def exists(self) -> bool:
        return (self.root / "CURRENT").is_file()

    def current(self) -> Path:
        try:
            name = (self.root / "CURRENT").read_text("utf-8").strip()
        except FileNotFoundError:
            raise IndexNotFoundError(f"no citekb index at {self.root}: run `citekb ingest PATH --index {self.root}` first") from None
        return self.root / "snapshots" / name

    def create(self, model_id: str, dim: int) -> Snapshot:
        """An empty snapshot for a new index; publish() makes it current."""
        snapshot = Snapshot(model_id=model_id, dim=dim)
        snapshot.dense.config = self.dense
        return snapshot

    def searcher(self, embedder: Embedder, cfg: RetrievalConfig, reranker: Reranker | None = None) -> HybridSearcher:
        """The searcher for this store's snapshots (backends/milvus.py has its own)."""
        from .search import HybridSearcher  # search.py imports this module

        return HybridSearcher(embedder, cfg, reranker)

    def load(self, expect_model_id: str | None = None) -> Snapshot:
        return self.load_current(expect_model_id)[1]

    def load_current(self, expect_model_id: str | None = None) -> tuple[Path, Snapshot]:
        """The live snapshot and the directory it was loaded from."""
        path, snapshot = self.read_current(lambda directory: Snapshot.load(directory, expect_model_id))
        snapshot.dense.config = self.dense  # what its next add or keep goes by, and its nprobe
        return path, snapshot

    def read_current(self, read: Callable[[Path], T]) -> tuple[Path, T]:
        """read(the directory CURRENT names), and that directory. A writer deletes the snapshot it
        supersedes right after flipping CURRENT, so a reader that read CURRENT just before the
        flip can find its snapshot's files gone half-way through; when CURRENT has moved since,
        the read failed for that reason and is done again on the new snapshot."""
        directory = self.current()
        for _ in range(_READ_ATTEMPTS - 1):
            try:
                return directory, read(directory)
            # What a vanished file raises: OSError from open and np.load, RuntimeError from faiss,
            # IndexMismatchError (a CitekbError) for a manifest that is gone.
            except (OSError, RuntimeError, ValueError, CitekbError):
                latest = self.current()
                if latest == directory:
                    raise
                log.info("snapshot=%s superseded while reading it; reading snapshot=%s", directory.name, latest.name)
                directory = latest
        return directory, read(directory)

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the index's write lock: one ingest or delete at a time, readers unaffected."""
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.root / ".lock",
                            CitekbError(f"index {self.root} is being written by another process; try again when it finishes")):
            yield

    def publish(self, snapshot: Snapshot) -> Path:
        """Write snapshot aside, then make it current with one atomic rename. Call under writer()."""
        snapshots = self.root / "snapshots"
        snapshots.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        staging = snapshots / f".tmp-{name}"
        snapshot.save(staging)
        _fsync_tree(staging)
        staging.rename(snapshots / name)
        _fsync(snapshots)
        # write_text truncates: a CURRENT.tmp left by a crashed writer is simply overwritten.
        pointer = self.root / "CURRENT.tmp"
        pointer.write_text(name + "\n", "utf-8")
        _fsync(pointer)
        os.replace(pointer, self.root / "CURRENT")
        _fsync(self.root)  # the rename itself survives a power cut, not only a killed process
        self._collect(keep=name)
        log.info("published snapshot=%s chunks=%d documents=%d", name, len(snapshot.chunks), len(snapshot.documents))
        return snapshots / name

    def _collect(self, keep: str) -> None:
        """Remove unpublished and superseded snapshots; readers hold theirs in memory."""
        for path in (self.root / "snapshots").iterdir():
            if path.name != keep:
                shutil.rmtree(path, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        _fsync(path)
    _fsync(directory)


def chunk_to_json(chunk: Chunk) -> dict[str, Any]:
    loc = asdict(chunk.locator)
    loc["bboxes"] = [[b.page, b.x0, b.top, b.x1, b.bottom] for b in chunk.locator.bboxes]
    return {"chunk_id": chunk.chunk_id, "text": chunk.text, "locator": loc,
            "spans": [[s.start, s.end, s.page, s.line_start, s.line_end, s.kind] for s in chunk.spans]}


def chunk_from_json(data: dict[str, Any]) -> Chunk:
    loc = dict(data["locator"])
    loc["section"] = tuple(loc["section"])
    loc["bboxes"] = tuple(BBox(*b) for b in loc["bboxes"])
    return Chunk(chunk_id=data["chunk_id"], text=data["text"], locator=Locator(**loc),
                 spans=tuple(Span(*s) for s in data["spans"]))
