"""ExtractionPool: files read ahead by several extraction workers come back exactly as one
worker reads them, in the loop's order; a hanging or crashing file fails alone; files the loop
will skip are never read."""

from __future__ import annotations

from pathlib import Path

import pytest
from citekb.ingest.config import IngestConfig
from citekb.ingest.errors import ConfigError, ExtractionError
from citekb.ingest.ids import doc_id_for_file
from citekb.ingest.parallel import ExtractionPool
from citekb.ingest.pipeline import default_extractors, extract
from fakes import CrashingExtractor, HangingExtractor

MISBEHAVING = (*default_extractors(), HangingExtractor(), CrashingExtractor())


def write(folder: Path, name: str, text: str = "# Notes\n\nThe kiln cools overnight.\n") -> Path:
    path = folder / name
    path.write_text(text, "utf-8")
    return path


def test_read_ahead_documents_equal_in_process_extraction(pdf_path: Path, docx_path: Path, markdown_path: Path) -> None:
    cfg = IngestConfig()
    paths = [pdf_path, docx_path, markdown_path]
    with ExtractionPool(workers=2) as pool:
        pool.plan(paths, cfg)
        for path in paths:
            doc_id = doc_id_for_file(path)
            assert pool.extract(path, doc_id, cfg) == extract(path, doc_id, cfg, default_extractors())
        pids = {w.pid for w in pool._all}
    assert None not in pids and len(pids) == 2  # both workers read files
    assert all(w.pid is None for w in pool._all)  # and ended with the block


def test_a_hanging_and_a_crashing_file_fail_alone(tmp_path: Path) -> None:
    cfg = IngestConfig(timeout_s=1.0)
    paths = [write(tmp_path, "a.md"), write(tmp_path, "stuck.hang"), write(tmp_path, "b.md", "# B\n\nOther text.\n"),
             write(tmp_path, "boom.crash"), write(tmp_path, "c.md", "# C\n\nThird text.\n")]
    with ExtractionPool(MISBEHAVING, workers=2) as pool:
        pool.plan(paths, cfg)
        results = {}
        for path in paths:
            try:
                results[path.name] = pool.extract(path, doc_id_for_file(path), cfg).source
            except ExtractionError as exc:
                results[path.name] = str(exc)
    assert results["a.md"] == "a.md" and results["b.md"] == "b.md" and results["c.md"] == "c.md"
    assert results["stuck.hang"] == "cannot read stuck.hang: extraction took longer than 1 s"
    assert results["boom.crash"].startswith("cannot read boom.crash: extraction crashed")


def test_skipped_files_are_not_read_and_unplanned_ones_are_read_on_demand(tmp_path: Path) -> None:
    known = write(tmp_path, "known.md")
    with ExtractionPool(workers=2) as pool:
        pool.plan([known], IngestConfig(), skip=lambda doc_id: True)
        assert all(w.pid is None for w in pool._all)  # nothing started for a file the loop skips
        late = write(tmp_path, "late.md", "# Late\n\nNot planned.\n")
        assert pool.extract(late, doc_id_for_file(late), IngestConfig()).source == "late.md"


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.md")
    cfg = IngestConfig()
    with ExtractionPool(workers=1) as pool:
        pool.plan([path], cfg)
        pool._pending[path].result()  # read ahead, then the file changes
        path.write_text("# Notes\n\nThe kiln is cold.\n", "utf-8")
        document = pool.extract(path, doc_id_for_file(path), cfg)
    assert document.blocks[1].text == "The kiln is cold."


def test_workers_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        ExtractionPool(workers=0)
