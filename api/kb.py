"""KnowledgeBase: the one facade the CLI, the HTTP server and Python users call."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from citekb.generation.answer import Answer
from citekb.generation.base import Generator, stream_answer
from citekb.generation.config import GenerationConfig
from citekb.generation.factory import make_generator
from citekb.generation.verify import verify
from citekb.ingest.chunking import chunk
from citekb.ingest.config import IngestConfig
from citekb.ingest.errors import CitekbError, IndexNotFoundError
from citekb.ingest.extract.base import Extractor
from citekb.ingest.ids import doc_id_for_file
from citekb.ingest.pipeline import (
    FailedFile,
    IngestedFile,
    IngestReport,
    default_extractors,
    discover,
)
from citekb.ingest.parallel import ReadsFiles, extraction_pool
from citekb.ingest.worker import ExtractionWorker
from citekb.retrieval.indexing import prepare
from citekb.retrieval.embed import Embedder
from citekb.retrieval.factory import make_embedder, make_reranker, make_store
from citekb.retrieval.hit import Hit
from citekb.retrieval.integrity import Problem, SnapshotParts, check_files, check_parts, read_parts, rebuild
from citekb.retrieval.search import HybridSearcher
from citekb.retrieval.store import DocumentRecord, Snapshot, check_groups, readable_by

from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RemovedFile:
    path: str
    doc_id: str


@dataclass(slots=True)
class SyncReport(IngestReport):
    """What an ingest did: the pipeline's IngestReport, plus the documents it removed because
    their files under a synced folder are gone (always empty without sync)."""

    removed: list[RemovedFile] = field(default_factory=list)


@dataclass(slots=True)
class CheckReport:
    index: Path
    snapshot: str
    documents: int  # as docs.json lists them
    chunks: int  # readable chunks in chunks.jsonl
    problems: list[Problem]

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class RepairReport:
    actions: list[str]  # what was rebuilt, re-ingested or dropped, one line each
    published: str | None  # the repaired snapshot's name; None when there was nothing to repair
    dropped: list[RemovedFile]  # documents lost: their chunks were damaged and their files are gone or changed
    remaining: list[Problem]  # what repair leaves alone: changed or missing files (ingest --sync fixes those)


class _CommitSchedule:
    """When a long ingest publishes the work done so far: after every `files` files that changed
    the index, or when `seconds` have passed since the last commit (0 turns either off). Each
    commit rewrites the whole snapshot, so pacing commits by time keeps their cost a bounded
    share of the ingest."""

    def __init__(self, files: int, seconds: float) -> None:
        self.files, self.seconds = files, seconds
        self._pending = 0
        self._since = time.monotonic()

    def due(self, changed: bool) -> bool:
        """Count one ingested file; True when the work so far should be committed now."""
        self._pending += changed
        now = time.monotonic()
        enough_files = bool(self.files) and self._pending >= self.files
        long_enough = bool(self.seconds) and now - self._since >= self.seconds
        if not self._pending or not (enough_files or long_enough):
            return False
        self._pending, self._since = 0, now
        return True


class KnowledgeBase:
    """An index directory with the models that read and write it. Thread-safe for readers;
    writes take the index's file lock, so one writer at a time across processes."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, extractors: Sequence[Extractor] | None = None) -> None:
        self.settings = settings
        self._retrieval = settings.retrieval_config()
        self.store = make_store(settings.backend, settings.index, settings.milvus_config(), self._retrieval.dense)
        self._embedder = embedder
        self._extractors = tuple(extractors) if extractors is not None else default_extractors()
        self._searcher: HybridSearcher | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_path: Path | None = None
        self._lock = threading.Lock()

    @property
    def extractors(self) -> tuple[Extractor, ...]:
        return self._extractors

    # ---- models and snapshots, loaded on first use

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings.embedding_model, self.settings.model_precision)
            return self._embedder

    @property
    def searcher(self) -> HybridSearcher:
        embedder = self.embedder
        with self._lock:
            if self._searcher is None:
                self._searcher = self.store.searcher(embedder, self._retrieval, make_reranker(self._retrieval.rerank))
            return self._searcher

    def snapshot(self) -> Snapshot:
        """The live snapshot; reloaded when another process (or an upload) has published a newer
        one. Until then, readers keep answering from the one in memory; a snapshot is only ever
        seen whole, since it is published complete and never changed after."""
        current = self.store.current()
        with self._lock:
            if self._snapshot is None or current != self._snapshot_path:
                path, self._snapshot = self.store.load_current(expect_model_id=self.settings.embedding_model)
                self._snapshot_path = path
                log.info("loaded snapshot=%s chunks=%d", path.name, len(self._snapshot.chunks))
            return self._snapshot

    def warm_up(self) -> None:
        """Load the models (and the index, if there is one) now rather than on the first request."""
        self.searcher
        try:
            self.snapshot()
        except IndexNotFoundError:
            pass

    # ---- reading

    def search(self, query: str, k: int = 10, groups: AbstractSet[str] | None = None) -> list[Hit]:
        """Up to k hits, best first. With groups (a caller's access groups), only chunks of the
        documents it may read (Snapshot.readable) are searched, by a row mask inside both legs."""
        snapshot = self.snapshot()  # first: a missing index is reported before any model loads
        return self.searcher.search(snapshot, query, k, mask=snapshot.readable(groups))

    def ask(self, query: str, k: int | None = None, backend: str | None = None,
            groups: AbstractSet[str] | None = None) -> Answer:
        cfg, generator, hits = self._answering(query, k, backend, groups)
        # Every sentence checked against the passages it cites: flagged or dropped (verify_mode).
        return verify(generator.answer(query, hits), self.embedder, cfg.verify, question=query)

    def ask_stream(self, query: str, k: int | None = None, backend: str | None = None,
                   groups: AbstractSet[str] | None = None) -> Iterator[str | Answer]:
        """ask, as text deltas followed by the finished, verified Answer (see
        generation.base.stream_answer); with verify_mode "drop" its text is the one to keep."""
        cfg, generator, hits = self._answering(query, k, backend, groups)
        embedder = self.embedder
        return (verify(item, embedder, cfg.verify, question=query) if isinstance(item, Answer) else item
                for item in stream_answer(generator, query, hits))

    def _answering(self, query: str, k: int | None, backend: str | None,
                   groups: AbstractSet[str] | None) -> tuple[GenerationConfig, Generator, list[Hit]]:
        """What ask and ask_stream answer with: the generation config, the backend, the hits."""
        cfg = self.settings.generation_config()
        generator = make_generator(cfg, backend, self.embedder)
        return cfg, generator, self.search(query, k or self.settings.ask_k, groups)

    def documents(self, groups: AbstractSet[str] | None = None) -> list[DocumentRecord]:
        """The indexed documents by file name; with groups, only those a caller in them may read."""
        try:
            snapshot = self.snapshot()
        except IndexNotFoundError:
            return []
        return sorted((r for r in snapshot.documents.values() if readable_by(r, groups)), key=lambda r: r.source)

    # ---- writing

    def delete(self, doc_id: str) -> DocumentRecord:
        self.store.current()  # no index: IndexNotFoundError now, before writer() creates its folder
        with self.store.writer():
            snapshot = self.store.load(expect_model_id=self.settings.embedding_model)
            record = snapshot.remove(doc_id)
            self.store.publish(snapshot)
        return record

    def ingest(self, paths: Sequence[Path], show_progress: bool = False, sync: bool = False,
               groups: Sequence[str] | None = None) -> SyncReport:
        """Index every supported file under paths. A file that fails is reported and the rest
        still go in; a file whose bytes are already indexed costs a hash and nothing more. With
        sync, documents whose files lay under a folder in paths and are gone are removed (one
        whose bytes turned up at another path is moved there instead).

        The index changes atomically, at each commit: every Settings.commit_every_files files
        or commit_every_s seconds, and at the end. A crash loses the work since the last commit;
        ingesting again picks up from there.

        groups are the access groups the files' documents get (none: readable by all); given,
        they replace those of documents already indexed, so ingesting again regroups them."""
        groups = None if groups is None else check_groups(groups)
        files, skipped = discover(paths, self._extractors)
        report = SyncReport(skipped=skipped)
        folders = [p.resolve() for p in paths if p.is_dir()] if sync else []
        if not files and not (folders and self.store.exists):
            return report
        cfg = self.settings.ingest_config()
        embedder = self.embedder
        commits = _CommitSchedule(self.settings.commit_every_files, self.settings.commit_every_s)
        with self.store.writer(), extraction_pool(self._extractors, self.settings.ingest_workers, self.settings.ray_address) as worker:
            if self.store.exists:
                snapshot = self.store.load(expect_model_id=self.settings.embedding_model)
            else:
                snapshot = self.store.create(embedder.model_id, embedder.dim)
            worker.plan(files, cfg, skip=lambda doc_id: doc_id in snapshot.documents)  # extraction runs ahead
            changed = False  # since the last commit
            for path in tqdm(files, desc="ingest", unit="file", disable=not show_progress, file=sys.stderr, leave=False):
                try:
                    entry, did_change = self._ingest_file(snapshot, path, cfg, embedder, worker, groups)
                except CitekbError as exc:
                    report.failed.append(FailedFile(str(path), str(exc)))
                    log.warning("ingest failed path=%s error=%s", path, exc)
                    continue
                except Exception as exc:  # the per-file boundary: one bad file never costs the batch
                    log.exception("ingest crashed path=%s", path)
                    report.failed.append(FailedFile(str(path), f"cannot read {path.name}: unexpected {type(exc).__name__}: {exc}"))
                    continue
                report.ingested.append(entry)
                changed = changed or did_change
                if commits.due(did_change):
                    self.store.publish(snapshot)
                    changed = False
            if folders:
                changed = self._remove_gone(snapshot, folders, report) or changed
            if changed:
                self.store.publish(snapshot)
        return report

    def _remove_gone(self, snapshot: Snapshot, folders: Sequence[Path], report: SyncReport) -> bool:
        """Sync: drop the documents whose files under folders no longer exist, or move one to
        where this ingest found its bytes. True if the snapshot changed."""
        found = {entry.doc_id: i for i, entry in enumerate(report.ingested)}
        gone = {r.doc_id: r for folder in folders for r in snapshot.under(folder) if not Path(r.path).exists()}
        for doc_id, record in sorted(gone.items(), key=lambda item: item[1].path):
            if doc_id in found:
                entry = report.ingested[found[doc_id]]
                log.info("moved doc_id=%s from=%s to=%s", doc_id, record.path, entry.path)
                snapshot.relocate(doc_id, Path(entry.path))
                report.ingested[found[doc_id]] = replace(entry, source=Path(entry.path).name)
            else:
                log.info("removed doc_id=%s path=%s: its file is gone", doc_id, record.path)
                snapshot.remove(doc_id)
                report.removed.append(RemovedFile(record.path, doc_id))
        return bool(gone)

    # ---- integrity

    def check(self, files: bool = True) -> CheckReport:
        """Every problem with the live snapshot (its files, their counts, their agreement) and,
        with files, with the documents' files (changed or gone). Reads only; takes no lock."""

        def read(directory: Path) -> SnapshotParts:
            parts = read_parts(directory)
            if parts.problems and self.store.current() != directory:
                # A writer published and collected this snapshot while it was read: the problems
                # are that, not damage. read_current reads the new one.
                raise FileNotFoundError(f"snapshot {directory.name} was superseded while it was read")
            return parts

        directory, parts = self.store.read_current(read)
        problems = check_parts(parts, self.settings.embedding_model)
        if files and parts.documents is not None:
            problems += check_files(parts.documents.values())
        return CheckReport(self.settings.index, directory.name, len(parts.documents or {}), len(parts.chunks), problems)

    def repair(self) -> RepairReport:
        """Publish a consistent snapshot rebuilt from the live one: stores that disagree with the
        chunks rebuilt (the dense one re-embedded), chunks of unknown documents dropped, and a
        document with missing chunks ingested again from its file if that is unchanged, else
        dropped. Nothing is published when the snapshot is sound; an index made by another
        embedding model or citekb format raises IndexMismatchError."""
        self.store.current()  # no index: IndexNotFoundError now, before writer() creates its folder
        with self.store.writer(), ExtractionWorker(self._extractors) as worker:
            parts = read_parts(self.store.current())
            problems = check_parts(parts, self.settings.embedding_model)
            remaining = check_files(parts.documents.values()) if parts.documents is not None else []
            if not problems:
                return RepairReport([], None, [], remaining)
            rebuilt = rebuild(parts, self.settings.embedding_model, lambda: self.embedder)
            snapshot, actions, dropped = rebuilt.snapshot, rebuilt.actions, []
            cfg = self.settings.ingest_config()
            for record in rebuilt.incomplete:
                path = Path(record.path)
                try:
                    if not path.is_file() or doc_id_for_file(path) != record.doc_id:
                        raise CitekbError(f"{record.path} is gone or has changed since it was ingested")
                    self._ingest_file(snapshot, path, cfg, self.embedder, worker, list(record.groups))
                    actions.append(f"ingested {record.path} ({record.doc_id}) again")
                except CitekbError as exc:
                    actions.append(f"lost {record.source} ({record.doc_id}): {exc}; ingest its file again")
                    dropped.append(RemovedFile(record.path, record.doc_id))
            published = self.store.publish(snapshot)
        remaining = [p for p in remaining if p.doc_id in snapshot.documents]
        return RepairReport(actions, published.name, dropped, remaining)

    def _ingest_file(self, snapshot: Snapshot, path: Path, cfg: IngestConfig, embedder: Embedder,
                     worker: ReadsFiles, groups: list[str] | None = None) -> tuple[IngestedFile, bool]:
        doc_id = doc_id_for_file(path)
        previous = snapshot.find_path(str(path))
        # The file changed since it was ingested: its old version's doc_id, whose chunks go.
        stale = previous.doc_id if previous is not None and previous.doc_id != doc_id else None
        known = snapshot.documents.get(doc_id)
        if known is not None:
            # Its new bytes are already indexed (a copy elsewhere); its old version's chunks still go.
            if stale is not None:
                snapshot.remove(stale)
            regrouped = groups is not None and groups != known.groups
            if regrouped:
                known.groups = list(groups or ())
            return (IngestedFile(str(path), doc_id, known.source, known.pages, known.chunks, unchanged=True),
                    stale is not None or regrouped)
        document = worker.extract(path, doc_id, cfg)
        chunks = chunk(document, cfg.chunking)
        rows = prepare(chunks, embedder)
        if stale is not None:
            snapshot.remove(stale)
        record = DocumentRecord(doc_id=doc_id, source=path.name, path=str(path), title=document.title,
                                pages=document.pages, chunks=len(chunks), ingested_at=time.time(),
                                warnings=list(document.warnings), groups=list(groups or ()))
        snapshot.add(record, chunks, rows)
        log.info("ingested doc_id=%s path=%s chunks=%d", doc_id, path, len(chunks))
        return IngestedFile(str(path), doc_id, path.name, document.pages, len(chunks), warnings=document.warnings), True

