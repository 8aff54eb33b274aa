"""Fixtures for the portal tests; what they build is described in portal_server.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

HTTP_TESTS_DIR = Path(__file__).resolve().parent
if str(HTTP_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(HTTP_TESTS_DIR))

from citekb.api.http.app import create_app  # noqa: E402

from portal_server import Portal, build_portal  # noqa: E402


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Portal]:
    root = tmp_path_factory.mktemp("portal")
    kb, secrets, ids = build_portal(root, corpus_dir)
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        yield Portal(root / "idx", kb, client, secrets, ids)


