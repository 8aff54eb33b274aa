"""The extraction worker: the same Documents as in-process extraction, errors as the extractor
raised them, and a file that hangs, runs out of memory or crashes the child reported as that
file's failure while the next file is still read (by a fresh child)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from citekb.ingest.config import IngestConfig
from citekb.ingest.errors import ConfigError, ExtractionError, UnsupportedFormatError
from citekb.ingest.pipeline import default_extractors, extract
from citekb.ingest.worker import ExtractionWorker

from fakes import CrashingExtractor, HangingExtractor, LoggingExtractor, MemoryHungryExtractor, SlowPagesExtractor

MISBEHAVING = (*default_extractors(), HangingExtractor(), MemoryHungryExtractor(), CrashingExtractor(), LoggingExtractor(),
               SlowPagesExtractor())


def write(tmp_path: Path, name: str, text: str = "# Notes\n\nThe kiln cools overnight.\n") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def test_documents_equal_in_process_extraction_and_one_child_serves_every_file(
    pdf_path: Path, docx_path: Path, markdown_path: Path
) -> None:
    cfg = IngestConfig()
    with ExtractionWorker() as worker:
        pids = set()
        for path in (pdf_path, docx_path, markdown_path):
            assert worker.extract(path, "doc1", cfg) == extract(path, "doc1", cfg, default_extractors())
            pids.add(worker.pid)
    assert len(pids) == 1 and None not in pids
    assert worker.pid is None  # ended with the block


def test_extractor_errors_come_back_as_raised_and_the_child_keeps_serving(tmp_path: Path) -> None:
    with ExtractionWorker() as worker:
        with pytest.raises(ExtractionError, match=r"^cannot read empty\.md: the file is empty \(0 bytes\)$"):
            worker.extract(write(tmp_path, "empty.md", ""), "x", IngestConfig())
        pid = worker.pid
        with pytest.raises(UnsupportedFormatError, match=r"^data\.csv: unsupported file type '\.csv'"):
            worker.extract(write(tmp_path, "data.csv", "a,b\n"), "x", IngestConfig())
        assert worker.extract(write(tmp_path, "ok.md"), "x", IngestConfig()).blocks[1].text == "The kiln cools overnight."
        assert worker.pid == pid


def test_a_file_that_hangs_is_killed_at_the_timeout_and_the_next_file_is_read(tmp_path: Path) -> None:
    with ExtractionWorker(MISBEHAVING) as worker:
        worker.extract(write(tmp_path, "first.md"), "x", IngestConfig())
        hung_pid = worker.pid
        with pytest.raises(ExtractionError, match=r"^cannot read stuck\.hang: extraction took longer than 0\.5 s$"):
            worker.extract(write(tmp_path, "stuck.hang"), "x", IngestConfig(timeout_s=0.5))
        assert worker.pid is None  # killed, not left running
        document = worker.extract(write(tmp_path, "after.md"), "x", IngestConfig())
        assert document.source == "after.md"
        assert worker.pid not in (None, hung_pid)


def test_a_file_that_keeps_reporting_pages_may_take_longer_than_the_timeout(tmp_path: Path) -> None:
    # 6 pages at 0.3 s: 1.8 s in all, never 1 s without progress (a long scan being OCR'd).
    cfg = IngestConfig(timeout_s=1.0)
    with ExtractionWorker(MISBEHAVING) as worker:
        document = worker.extract(write(tmp_path, "scan.pages", "0.3\n" + "p\n" * 6), "x", cfg)
    assert document.pages == 6


def test_a_file_stuck_after_some_pages_is_killed_naming_the_last_progress(tmp_path: Path) -> None:
    with ExtractionWorker(MISBEHAVING) as worker:
        with pytest.raises(ExtractionError, match=r"^cannot read stuck\.pages: extraction made no progress for 1 s after page 3$"):
            worker.extract(write(tmp_path, "stuck.pages", "0.1\np\np\np\nhang\n"), "x", IngestConfig(timeout_s=1.0))
        assert worker.pid is None
        assert worker.extract(write(tmp_path, "after.md"), "x", IngestConfig()).source == "after.md"


def test_a_file_that_advances_is_still_stopped_at_the_per_file_limit(tmp_path: Path) -> None:
    with ExtractionWorker(MISBEHAVING) as worker:
        with pytest.raises(ExtractionError, match=r"^cannot read long\.pages: extraction took longer than 1\.5 s \(the per-file limit\)$"):
            worker.extract(write(tmp_path, "long.pages", "0.2\n" + "p\n" * 50), "x", IngestConfig(timeout_s=1.0, max_file_s=1.5))


def test_memory_over_the_limit_is_a_clean_error_for_that_file(tmp_path: Path) -> None:
    with ExtractionWorker(MISBEHAVING) as worker:
        with pytest.raises(ExtractionError, match=r"^cannot read big\.hungry: extraction needed more than the 512 MiB memory limit$"):
            worker.extract(write(tmp_path, "big.hungry"), "x", IngestConfig(max_memory_mb=512))
        assert worker.extract(write(tmp_path, "after.md"), "x", IngestConfig()).source == "after.md"


def test_the_limit_is_lifted_after_each_file(tmp_path: Path) -> None:
    with ExtractionWorker(MISBEHAVING) as worker:
        worker.extract(write(tmp_path, "small.md"), "x", IngestConfig(max_memory_mb=512))
        # Under the default 2 GiB the 1 GiB allocation succeeds, and the fake says so.
        with pytest.raises(ExtractionError, match=r"^cannot read big\.hungry: unexpected AssertionError: allocated 1073741824 bytes"):
            worker.extract(write(tmp_path, "big.hungry"), "x", IngestConfig())


def test_a_child_that_dies_is_reported_and_replaced(tmp_path: Path) -> None:
    with ExtractionWorker(MISBEHAVING) as worker:
        with pytest.raises(ExtractionError, match=r"^cannot read boom\.crash: extraction crashed \(the worker process exited with status 70\)$"):
            worker.extract(write(tmp_path, "boom.crash"), "x", IngestConfig())
        assert worker.extract(write(tmp_path, "after.md"), "x", IngestConfig()).source == "after.md"


def test_the_childs_log_records_reach_the_parents_loggers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with ExtractionWorker(MISBEHAVING) as worker:
        worker.extract(write(tmp_path, "notes.logged"), "x", IngestConfig())
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("citekb.tests.logging_extractor", logging.WARNING, "odd file path=notes.logged")
    ]


def test_extractors_that_cannot_be_sent_to_the_child_are_refused_up_front() -> None:
    class Local:  # a class defined in a function cannot be pickled by reference
        suffixes = (".local",)

    with pytest.raises(ConfigError, match=r"^extractors must be picklable"):
        ExtractionWorker([Local()])  # type: ignore[list-item]
