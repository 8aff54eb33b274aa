"""Extraction in a child process, so one pathological file cannot hang, exhaust memory or crash
the process that ingests a batch.

The child is a fresh interpreter (`python -m citekb.ingest.worker`), not a fork: the parent has
usually loaded torch by the time it ingests, and forking a process with torch's thread pools
running can deadlock the child. A fresh interpreter also imports only the ingest stage, not
the parent's __main__ (multiprocessing's spawn would re-import the `citekb` console script and
with it the whole CLI). One child serves file after file; a new one is started only after a
kill (time limit), a crash, or running out of memory.

Parent and child talk over a socket pair with multiprocessing's Connection (pickled messages):

    parent -> child   (sys.path, log level), the pickled extractors, then (path, doc_id, cfg) per file
    child  -> parent  ("ready", None) or ("failed", why), then per file (status, payload, log records)
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import pickle
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from .config import IngestConfig
from .document import Document
from .errors import CitekbError, ConfigError, ExtractionError, reason
from .extract.base import Extractor, set_progress_hook
from .pipeline import default_extractors, extract

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0  # importing pdfplumber and friends takes ~0.5 s; a loaded machine, much more


class ExtractionWorker:
    """Runs pipeline.extract for one file at a time in a child process, within cfg.timeout_s
    seconds and cfg.max_memory_mb of address space. Use as a context manager; the child starts
    on the first extract() and ends with the block.

    extract() returns the Document, or raises the CitekbError the extractor raised, or an
    ExtractionError naming the file when it took too long, ran out of memory, or the child died.
    Not thread-safe: one worker per ingest loop."""

    def __init__(self, extractors: Sequence[Extractor] | None = None) -> None:
        self._extractors = tuple(extractors) if extractors is not None else default_extractors()
        try:
            # Checked now rather than at the first file: a custom extractor that cannot be
            # sent to the child is a programming error, not a problem with some file.
            self._extractors_message = pickle.dumps(self._extractors)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ConfigError(f"extractors must be picklable to run in the extraction worker ({exc})") from exc
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> ExtractionWorker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs (for tests and diagnostics)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def extract(self, path: Path, doc_id: str, cfg: IngestConfig) -> Document:
        conn = self._ensure_started(path)
        # timeout_s bounds the time without progress: the child reports each page it finishes,
        # so a 200-page scan that OCRs a page every few seconds goes on, while a file stuck in
        # one page (or one parse) is killed. max_file_s bounds the file as a whole.
        give_up = time.monotonic() + cfg.max_file_s
        last: str | None = None
        try:
            conn.send((path, doc_id, cfg))
        except OSError:  # the child died between files: its end of the socket is gone
            pass  # and recv() below says so
        while True:
            wait = min(cfg.timeout_s, give_up - time.monotonic())
            try:
                answered = wait > 0 and conn.poll(wait)
            except OSError:
                answered = True
            if not answered:
                self._kill()
                if time.monotonic() >= give_up:
                    raise ExtractionError(f"cannot read {path.name}: extraction took longer than {cfg.max_file_s:g} s (the per-file limit)")
                if last is None:
                    raise ExtractionError(f"cannot read {path.name}: extraction took longer than {cfg.timeout_s:g} s")
                raise ExtractionError(f"cannot read {path.name}: extraction made no progress for {cfg.timeout_s:g} s after {last}")
            try:
                status, payload, records = conn.recv()
            except (EOFError, OSError):
                raise ExtractionError(f"cannot read {path.name}: extraction crashed ({self._death()})") from None
            if status != "progress":
                break
            last = str(payload)
        _replay(records)
        if status == "ok":
            assert isinstance(payload, Document)
            return payload
        if status == "memory":
            self._kill()  # a process that hit its memory limit may hold half-built caches; start afresh
            raise ExtractionError(f"cannot read {path.name}: extraction needed more than the {cfg.max_memory_mb} MiB memory limit")
        if status == "error":
            assert isinstance(payload, CitekbError)
            raise payload
        raise ExtractionError(f"cannot read {path.name}: unexpected {payload}")

    def close(self) -> None:
        """Ends the child: it exits when its end of the socket closes; killed if it does not."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    # ---- the child's life

    def _ensure_started(self, path: Path) -> Connection:
        if self._conn is not None and self._proc is not None and self._proc.poll() is None:
            return self._conn
        self.close()
        parent_end, child_end = Pipe()
        # MALLOC_ARENA_MAX: glibc reserves 64 MiB of address space per thread that allocates,
        # which counts against the RLIMIT_AS cap though it is never used (OCR runs 8 threads).
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
        # The child's stdout is this process's stderr: whatever a library prints there must
        # not land in our stdout, which may be carrying --json output.
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "citekb.ingest.worker", str(child_end.fileno())],
                pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL, stdout=2, env=env,
            )
        except OSError as exc:
            parent_end.close()
            raise ExtractionError(f"cannot read {path.name}: the extraction worker failed to start ({exc})") from exc
        finally:
            child_end.close()
        self._proc, self._conn = proc, parent_end
        try:
            # sys.path first and on its own: unpickling the extractors may need it (a custom
            # extractor's module found through a path the parent added).
            parent_end.send((list(sys.path), logging.getLogger().getEffectiveLevel()))
            parent_end.send_bytes(self._extractors_message)
            if not parent_end.poll(STARTUP_TIMEOUT_S):
                self._kill()
                raise ExtractionError(f"cannot read {path.name}: the extraction worker did not start within {STARTUP_TIMEOUT_S:g} s")
            status, why = parent_end.recv()
        except (EOFError, OSError):
            status, why = "failed", self._death()
        if status != "ready":
            self._kill()
            raise ExtractionError(f"cannot read {path.name}: the extraction worker failed to start ({why})")
        log.debug("extraction worker started pid=%d", proc.pid)
        return parent_end

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.close()

    def _death(self) -> str:
        """Why the child is gone, for a message; reaps it."""
        proc = self._proc
        self.close()  # its socket end is closed, so it has exited or is exiting: close() waits
        code = proc.returncode if proc is not None else None
        if code is None:
            return "the worker process vanished"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = " (the system may have run out of memory)" if -code == signal.SIGKILL else ""
            return f"the worker process was killed by {name}{hint}"
        return f"the worker process exited with status {code}"


def _replay(records: Sequence[logging.LogRecord]) -> None:
    """Hands the child's log records to the parent's loggers, as if logged here."""
    for record in records:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


# ---- the child


class _Collect(logging.Handler):
    """Keeps the child's log records (made picklable) to send back with the file's result."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._prepare = logging.handlers.QueueHandler(None).prepare  # type: ignore[arg-type]

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self._prepare(record))


def _serve(conn: Connection) -> None:
    sys_path, level = conn.recv()
    sys.path[:] = list(dict.fromkeys([*sys.path, *sys_path]))
    try:
        extractors = pickle.loads(conn.recv_bytes())
    except Exception as exc:  # e.g. a custom extractor's module not importable here
        conn.send(("failed", f"cannot load the extractors: {type(exc).__name__}: {reason(exc)}"))
        return
    collect = _Collect()
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(collect)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # Each page a PDF finishes is reported, so the parent can tell a long file from a stuck one.
    set_progress_hook(lambda what: conn.send(("progress", what, [])))
    conn.send(("ready", None))
    while True:
        try:
            path, doc_id, cfg = conn.recv()
        except EOFError:
            return  # the parent closed its end: the batch is done
        collect.records = []
        reply: tuple[str, Any]
        try:
            # Only around extraction: pickling a large Document back needs memory of its own.
            # A lower limit this process was started with stays in force.
            cap = cfg.max_memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (cap if soft == resource.RLIM_INFINITY else min(cap, soft), hard))
            try:
                reply = ("ok", extract(path, doc_id, cfg, extractors))
            finally:
                resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        except MemoryError:
            reply = ("memory", None)
        except CitekbError as exc:
            reply = ("error", exc)
        except Exception as exc:  # the per-file boundary inside the child; the parent reports it
            log.debug("extraction failed path=%s", path, exc_info=True)
            reply = ("crash", f"{type(exc).__name__}: {reason(exc)}")
        try:
            conn.send((*reply, collect.records))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            conn.send(("error", ExtractionError(f"cannot read {Path(path).name}: result could not be returned ({exc})"), []))


def main(argv: Sequence[str] | None = None) -> int:
    """The child's entry point: serves the parent on the socket whose descriptor is argv[0]."""
    args = sys.argv[1:] if argv is None else argv
    conn = Connection(int(args[0]))
    try:
        _serve(conn)
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
