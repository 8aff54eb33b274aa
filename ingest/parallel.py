"""Extraction ahead of the ingest loop, in several worker processes at once.

KnowledgeBase.ingest takes one file at a time: extract it, chunk it, embed it, add it. Alone,
extraction (pdfplumber, in a worker process) and embedding (MiniLM, in the ingest process)
take turns, and one of two cores idles. ExtractionPool keeps `workers` ExtractionWorkers busy
on the files the loop will ask for next while the loop embeds the current one, so both run at
once. Each file is still extracted in an ExtractionWorker, with its time and memory limits: a
file that hangs or crashes its worker fails alone, as before.

The loop asks for files in the order it planned (plan()); a file whose bytes are already
indexed (skip(doc_id)) is not extracted ahead, since the loop will not ask for it."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Generic, Protocol, Self, TypeVar

from .config import IngestConfig
from .document import Document
from .errors import ConfigError
from .extract.base import Extractor
from .ids import doc_id_for_file
from .worker import ExtractionWorker

if TYPE_CHECKING:
    from .ray_pool import RayExtractionPool

log = logging.getLogger(__name__)


class ReadsFiles(Protocol):
    """What the ingest loop extracts with: ExtractionWorker, ExtractionPool, RayExtractionPool."""

    def extract(self, path: Path, doc_id: str, cfg: IngestConfig) -> Document: ...


def extraction_pool(extractors: Sequence[Extractor] | None, workers: int,
                    ray_address: str | None = None) -> ExtractionPool | RayExtractionPool:
    """Local worker processes, or Ray actors when ray_address is set ("local": a Ray started
    on this machine; "auto" or "ray://head:10001": a running cluster)."""
    if ray_address is None:
        return ExtractionPool(extractors, workers)
    from .ray_pool import RayExtractionPool  # Ray is optional and slow to import

    return RayExtractionPool(extractors, workers, address=ray_address)


T = TypeVar("T")


class ReadAhead(Generic[T]):
    """The planning every pool shares: the files plan() names are started in order, up to
    `ahead` at a time, unless skip(doc_id) says the loop will not need them. A pool keeps the
    work under way in `_pending` (path -> T) and starts one file in `_start`."""

    def __init__(self, workers: int, ahead: int | None) -> None:
        if workers < 1:
            raise ConfigError(f"ingest workers must be at least 1, got {workers}")
        self._ahead = ahead if ahead is not None else 2 * workers
        self._planned: list[Path] = []
        self._next = 0
        self._cfg = IngestConfig()
        self._skip: Callable[[str], bool] = lambda doc_id: False
        self._pending: dict[Path, T] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def plan(self, paths: Sequence[Path], cfg: IngestConfig, skip: Callable[[str], bool] | None = None) -> None:
        """The files extract() will be asked for, in order; skip(doc_id) True: not needed."""
        self._planned, self._next, self._cfg = list(paths), 0, cfg
        self._skip = skip or (lambda doc_id: False)
        self._fill()

    def close(self) -> None:
        raise NotImplementedError

    def _fill(self) -> None:
        while len(self._pending) < self._ahead and self._next < len(self._planned):
            path = self._planned[self._next]
            self._next += 1
            if path not in self._pending:
                self._start(path)

    def _start(self, path: Path) -> None:
        raise NotImplementedError


class ExtractionPool(ReadAhead[Future[tuple[str, Document] | None]]):
    """ExtractionWorker's extract(), with up to `ahead` files extracted in advance by `workers`
    worker processes. Use as a context manager; the workers end with the block. extract()
    returns what ExtractionWorker.extract would for that file, or raises what it would."""

    def __init__(self, extractors: Sequence[Extractor] | None = None, workers: int = 2, ahead: int | None = None) -> None:
        super().__init__(workers, ahead)
        self._all = [ExtractionWorker(extractors) for _ in range(workers)]
        self._idle: queue.SimpleQueue[ExtractionWorker] = queue.SimpleQueue()
        for worker in self._all:
            self._idle.put(worker)
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="citekb-extract")

    def extract(self, path: Path, doc_id: str, cfg: IngestConfig) -> Document:
        future = self._pending.pop(path, None)
        self._fill()
        if future is not None and cfg == self._cfg:
            ahead = future.result()  # raises the file's CitekbError, as ExtractionWorker would
            if ahead is not None and ahead[0] == doc_id:
                return ahead[1]
        return self._with_worker(path, doc_id, cfg)  # not read ahead, or the file changed since

    def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._threads.shutdown(wait=True)
        self._pending.clear()
        for worker in self._all:
            worker.close()

    def _start(self, path: Path) -> None:
        self._pending[path] = self._threads.submit(self._read_ahead, path, self._cfg)

    def _read_ahead(self, path: Path, cfg: IngestConfig) -> tuple[str, Document] | None:
        try:
            doc_id = doc_id_for_file(path)
        except OSError:
            return None  # the loop hashes it again and reports the error itself
        if self._skip(doc_id):
            return None
        return doc_id, self._with_worker(path, doc_id, cfg)

    def _with_worker(self, path: Path, doc_id: str, cfg: IngestConfig) -> Document:
        worker = self._idle.get()
        try:
            return worker.extract(path, doc_id, cfg)
        finally:
            self._idle.put(worker)
