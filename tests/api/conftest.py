"""Fixtures for the CLI and HTTP tests: a KnowledgeBase on HashEmbedder in tmp_path, a TestClient
on it, and a CliRunner whose KnowledgeBase (built by the CLI itself) embeds with HashEmbedder too.

Nothing here loads the real embedding model: the CLI finds "test/hash-embedder" in the embedder
table because the cli fixture puts it there for the one test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from citekb.api.cli import cli
from citekb.api.http.app import create_app
from citekb.api.kb import KnowledgeBase
from citekb.retrieval import factory

from fakes import HashEmbedder

API_TESTS_DIR = Path(__file__).resolve().parent
if str(API_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(API_TESTS_DIR))

from api_contract import HASH_MODEL, OTHER_HASH_MODEL, CliResult, RunCli, make_kb  # noqa: E402


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "idx"


@pytest.fixture
def kb(index_dir: Path) -> KnowledgeBase:
    return make_kb(index_dir)


@pytest.fixture
def client(kb: KnowledgeBase) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a crash shows up as the 500 a client would get, which the
    # tests then reject, rather than as an exception inside the test client.
    with TestClient(create_app(kb), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunCli:
    """run_cli("search", "query", "--json") runs the citekb CLI in-process, from tmp_path as the
    working directory, with the hash embedder and no CITEKB_* settings but those the test sets."""
    for name in list(os.environ):
        if name.startswith("CITEKB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CITEKB_EMBEDDING_MODEL", HASH_MODEL)
    # The CLI sets these with os.environ.setdefault; set them here so monkeypatch undoes them.
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"),
                        ("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(factory.EMBEDDERS, HASH_MODEL, lambda precision: HashEmbedder())  # type: ignore[index]
    monkeypatch.setitem(factory.EMBEDDERS, OTHER_HASH_MODEL, lambda precision: HashEmbedder(model_id=OTHER_HASH_MODEL))  # type: ignore[index]
    monkeypatch.chdir(tmp_path)

    def run(*args: str | Path) -> CliResult:
        # catch_exceptions=False: an exception escaping the CLI fails the test instead of being
        # tucked away in Result.exception (the CLI must turn every error into a message).
        result: Result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run
