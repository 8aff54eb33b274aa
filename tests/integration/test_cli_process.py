"""The installed `citekb` script as a real process with the real embedding model: with --json,
stdout holds exactly one JSON document (no progress bars, logs or model-loading chatter), and the
exit codes are 0 ok, 1 some files failed or an error, 2 a usage error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from citekb.ingest.ids import doc_id_for_file
from tiny_docs import MARKDOWN_TEXT

pytestmark = pytest.mark.slow

CITEKB = Path(sys.executable).with_name("citekb")
NOT_A_PDF = b"%PDF-1.4\nthis is not a PDF body at all\n"


def citekb(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEKB_")}
    env["HF_HUB_OFFLINE"] = "1"
    assert CITEKB.is_file(), f"{CITEKB} is not installed"
    # The timeout only stops a hung process; nothing here asserts how long anything takes.
    return subprocess.run([str(CITEKB), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def only_json(stdout: str) -> Any:
    """stdout parsed as one JSON document; json.loads rejects anything printed before or after it."""
    return json.loads(stdout)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-process")
    docs = root / "docs"
    docs.mkdir()
    (docs / "security.md").write_text(MARKDOWN_TEXT, "utf-8")
    (docs / "bad.pdf").write_bytes(NOT_A_PDF)
    return root


@pytest.fixture(scope="module")
def first_ingest(workdir: Path) -> subprocess.CompletedProcess[str]:
    return citekb("ingest", workdir / "docs", "--index", workdir / "idx", "--json", cwd=workdir)


def test_ingest_json_with_a_failed_file_exits_1_and_prints_only_the_report(workdir: Path, first_ingest: subprocess.CompletedProcess[str]) -> None:
    assert first_ingest.returncode == 1, first_ingest.stderr
    report = only_json(first_ingest.stdout)
    assert set(report) == {"ingested", "skipped", "failed", "removed"}
    assert report["removed"] == []
    good = workdir / "docs" / "security.md"
    assert [(e["path"], e["doc_id"], e["unchanged"]) for e in report["ingested"]] == [(str(good.resolve()), doc_id_for_file(good), False)]
    assert [f["path"] for f in report["failed"]] == [str((workdir / "docs" / "bad.pdf").resolve())]
    assert "bad.pdf" in report["failed"][0]["error"]
    assert report["skipped"] == []
    assert "Traceback" not in first_ingest.stderr


def test_reingest_json_exits_0_and_reports_the_file_unchanged(workdir: Path, first_ingest: subprocess.CompletedProcess[str]) -> None:
    good = workdir / "docs" / "security.md"
    again = citekb("ingest", good, "--index", workdir / "idx", "--json", cwd=workdir)
    assert again.returncode == 0, again.stderr
    [entry] = only_json(again.stdout)["ingested"]
    assert (entry["doc_id"], entry["unchanged"]) == (doc_id_for_file(good), True)
    assert entry["chunks"] == only_json(first_ingest.stdout)["ingested"][0]["chunks"]


def test_search_json_finds_the_good_file_by_its_lines(workdir: Path, first_ingest: subprocess.CompletedProcess[str]) -> None:
    result = citekb("search", "Which extension do I call to reach the security desk?", "--k", "1",
                    "--index", workdir / "idx", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    [hit] = only_json(result.stdout)["hits"]
    assert hit["doc_id"] == doc_id_for_file(workdir / "docs" / "security.md")
    assert (hit["page"], hit["line_start"], hit["line_end"]) == (None, 17, 19)


def test_a_missing_path_is_a_usage_error_with_nothing_on_stdout(workdir: Path) -> None:
    result = citekb("ingest", workdir / "missing.md", "--index", workdir / "other-idx", "--json", cwd=workdir)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "missing.md: no such file or folder" in result.stderr
    assert not (workdir / "other-idx").exists()


def test_search_without_an_index_exits_1_without_a_traceback(workdir: Path) -> None:
    result = citekb("search", "foo", "--index", "/nonexistent/dir", cwd=workdir)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "citekb: error: no citekb index at /nonexistent/dir" in result.stderr
    assert "Traceback" not in result.stderr
