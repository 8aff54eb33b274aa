"""Extraction on a Ray cluster: ExtractionPool's interface (plan, extract, close), with the files
read ahead by Ray actors on any machine of the cluster instead of local worker processes.

Each actor keeps an ExtractionWorker of its own, so on the cluster a file is still extracted in
a child process with the time and memory limits of IngestConfig, and a file that hangs or
crashes fails alone. Files travel as bytes through Ray's object store: the cluster's machines
need no shared file system. Embedding and indexing stay in the ingesting process."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import IngestConfig
from .document import Document
from .errors import CitekbError, ConfigError, ExtractionError
from .extract.base import Extractor
from .ids import doc_id_for_bytes
from .parallel import ReadAhead
from .pipeline import default_extractors
from .worker import ExtractionWorker

log = logging.getLogger(__name__)


class _Extractor:
    """The Ray actor: one ExtractionWorker, fed file bytes written to a private folder."""

    def __init__(self, extractors: Sequence[Extractor]) -> None:
        self._worker = ExtractionWorker(extractors)
        self._tmp = tempfile.TemporaryDirectory(prefix="citekb-ray-")

    def extract(self, data: bytes, name: str, doc_id: str, cfg: IngestConfig) -> tuple[str, Any]:
        """("ok", Document) or ("error", the CitekbError): returned, not raised, so the
        caller gets the error itself rather than Ray's wrapper with a remote traceback."""
        path = Path(self._tmp.name) / name
        path.write_bytes(data)
        try:
            return "ok", self._worker.extract(path, doc_id, cfg)
        except CitekbError as exc:
            return "error", exc
        finally:
            path.unlink(missing_ok=True)


class RayExtractionPool(ReadAhead[tuple[str, Any]]):  # path -> (doc_id, Ray object ref)
    """Reads planned files ahead on `workers` Ray actors (one CPU each). address: a Ray
    cluster's address ("ray://head:10001", "auto"), or None for a Ray started on this machine
    for the ingest and stopped after it."""

    def __init__(self, extractors: Sequence[Extractor] | None = None, workers: int = 2, address: str | None = None,
                 ahead: int | None = None) -> None:
        super().__init__(workers, ahead)
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("CITEKB_RAY_ADDRESS is set but Ray is not installed: pip install 'citekb[ray]'") from exc
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            try:
                if address is None or address == "local":
                    # Same machine: the workers import what this process can (its sys.path).
                    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, runtime_env=env)
                else:
                    ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as exc:  # ConnectionError, RuntimeError, grpc errors: no common base
                raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}") from exc
        actor = ray.remote(num_cpus=1, max_restarts=1)(_Extractor)
        self._actors: list[Any] = [actor.remote(tuple(extractors) if extractors is not None else default_extractors()) for _ in range(workers)]
        self._turn = 0

    def extract(self, path: Path, doc_id: str, cfg: IngestConfig) -> Document:
        ahead = self._pending.pop(path, None)
        self._fill()
        if ahead is None or ahead[0] != doc_id or cfg != self._cfg:
            ahead = (doc_id, self._submit(path, path.read_bytes(), doc_id, cfg))
        try:
            status, payload = self._ray.get(ahead[1])
        except self._ray.exceptions.RayError as exc:
            raise ExtractionError(f"cannot read {path.name}: the Ray worker failed ({type(exc).__name__})") from exc
        if status == "ok":
            assert isinstance(payload, Document)
            return payload
        raise payload

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)  # ends its ExtractionWorker's child with it
        self._actors, self._pending = [], {}
        if self._started:
            self._ray.shutdown()

    def _submit(self, path: Path, data: bytes, doc_id: str, cfg: IngestConfig) -> Any:
        actor = self._actors[self._turn % len(self._actors)]
        self._turn += 1
        return actor.extract.remote(data, path.name, doc_id, cfg)

    def _start(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            return  # the loop reads it again and reports the error itself
        doc_id = doc_id_for_bytes(data)
        if not self._skip(doc_id):
            self._pending[path] = (doc_id, self._submit(path, data, doc_id, self._cfg))
