"""KnowledgeBase: the one facade the CLI, the HTTP server and Python users call."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from citekb.generation.answer import Answer
from citekb.generation.factory import make_generator
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
    extract,
)
from citekb.retrieval.indexing import prepare
from citekb.retrieval.embed import Embedder
from citekb.retrieval.factory import make_embedder, make_reranker
from citekb.retrieval.hit import Hit
from citekb.retrieval.search import HybridSearcher
from citekb.retrieval.store import DocumentRecord, IndexStore, Snapshot

from .settings import Settings

log = logging.getLogger(__name__)


class KnowledgeBase:
    """An index directory with the models that read and write it. Thread-safe for readers;
    writes take the index's file lock, so one writer at a time across processes."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, extractors: Sequence[Extractor] | None = None) -> None:
        self.settings = settings
        self.store = IndexStore(settings.index)
        self._embedder = embedder
        self._extractors = tuple(extractors) if extractors is not None else default_extractors()
        self._retrieval = settings.retrieval_config()
        self._searcher: HybridSearcher | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_path: Path | None = None
        self._lock = threading.Lock()

    # ---- models and snapshots, loaded on first use

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings.embedding_model)
            return self._embedder

    @property
    def searcher(self) -> HybridSearcher:
        embedder = self.embedder
        with self._lock:
            if self._searcher is None:
                self._searcher = HybridSearcher(embedder, self._retrieval, make_reranker(self._retrieval.rerank))
            return self._searcher

    def snapshot(self) -> Snapshot:
        """The live snapshot; reloaded when another process (or an upload) has published a newer one."""
        current = self.store.current()
        with self._lock:
            if self._snapshot is None or current != self._snapshot_path:
                self._snapshot = self.store.load(expect_model_id=self.settings.embedding_model)
                self._snapshot_path = current
                log.info("loaded snapshot=%s chunks=%d", current.name, len(self._snapshot.chunks))
            return self._snapshot

    def warm_up(self) -> None:
        """Load the models (and the index, if there is one) now rather than on the first request."""
        self.searcher
        try:
            self.snapshot()
        except IndexNotFoundError:
            pass

    # ---- reading

    def search(self, query: str, k: int = 10) -> list[Hit]:
        snapshot = self.snapshot()  # first: a missing index is reported before any model loads
        return self.searcher.search(snapshot, query, k)

    def ask(self, query: str, k: int | None = None, backend: str | None = None) -> Answer:
        generator = make_generator(self.settings.generation_config(), backend, self.embedder)
        hits = self.search(query, k or self.settings.ask_k)
        return generator.answer(query, hits)

    def documents(self) -> list[DocumentRecord]:
        try:
            snapshot = self.snapshot()
        except IndexNotFoundError:
            return []
        return sorted(snapshot.documents.values(), key=lambda r: r.source)

    # ---- writing

    def delete(self, doc_id: str) -> DocumentRecord:
        self.store.current()  # no index: IndexNotFoundError now, before writer() creates its folder
        with self.store.writer():
            snapshot = self.store.load(expect_model_id=self.settings.embedding_model)
            record = snapshot.remove(doc_id)
            self.store.publish(snapshot)
        return record

    def ingest(self, paths: Sequence[Path], show_progress: bool = False) -> IngestReport:
        """Index every supported file under paths. A file that fails is reported and the rest
        still go in; the index changes once, atomically, at the end."""
        files, skipped = discover(paths, self._extractors)
        report = IngestReport(skipped=skipped)
        if not files:
            return report
        cfg = self.settings.ingest_config()
        embedder = self.embedder
        with self.store.writer():
            if self.store.exists:
                snapshot = self.store.load(expect_model_id=self.settings.embedding_model)
            else:
                snapshot = Snapshot(model_id=embedder.model_id, dim=embedder.dim)
            changed = False
            for path in tqdm(files, desc="ingest", unit="file", disable=not show_progress, file=sys.stderr, leave=False):
                try:
                    entry, did_change = self._ingest_file(snapshot, path, cfg, embedder)
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
            if changed:
                self.store.publish(snapshot)
        return report

    def _ingest_file(self, snapshot: Snapshot, path: Path, cfg: IngestConfig, embedder: Embedder) -> tuple[IngestedFile, bool]:
        doc_id = doc_id_for_file(path)
        previous = snapshot.find_path(str(path))
        # The file changed since it was ingested: its old version's doc_id, whose chunks go.
        stale = previous.doc_id if previous is not None and previous.doc_id != doc_id else None
        known = snapshot.documents.get(doc_id)
        if known is not None:
            # Its new bytes are already indexed (a copy elsewhere); its old version's chunks still go.
            if stale is not None:
                snapshot.remove(stale)
            return IngestedFile(str(path), doc_id, known.source, known.pages, known.chunks, unchanged=True), stale is not None
        document = extract(path, doc_id, cfg, self._extractors)
        chunks = chunk(document, cfg.chunking)
        rows = prepare(chunks, embedder)
        if stale is not None:
            snapshot.remove(stale)
        record = DocumentRecord(doc_id=doc_id, source=path.name, path=str(path), title=document.title,
                                pages=document.pages, chunks=len(chunks), ingested_at=time.time(),
                                warnings=list(document.warnings))
        snapshot.add(record, chunks, rows)
        log.info("ingested doc_id=%s path=%s chunks=%d", doc_id, path, len(chunks))
        return IngestedFile(str(path), doc_id, path.name, document.pages, len(chunks), warnings=document.warnings), True
