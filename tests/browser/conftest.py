"""Fixtures for the widget, viewer and admin tests: the tiny corpus indexed with HashEmbedder and
served by a real uvicorn server on 127.0.0.1, a portal page on another origin (another port)
that embeds the widget with a read key, and Debian's chromium driven by playwright.

Browser tests skip, saying why, where chromium or playwright is missing; the viewer's routes are
also tested without a browser (test_viewer_routes.py)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BROWSER_TESTS_DIR = Path(__file__).resolve().parent
if str(BROWSER_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(BROWSER_TESTS_DIR))

from site_server import Site, running_site  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = BROWSER_TESTS_DIR.parents[1]
ARTIFACTS = REPO / "test-artifacts"  # gitignored: screenshots the browser tests save


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("site"), corpus_dir) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); the browser tests need it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start; containers
        # often have a tiny /dev/shm, which chromium would otherwise fill and crash on.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """screenshot(page, name): saves a PNG under the test's tmp_path and test-artifacts/; returns its path."""

    def save(page: Any, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy2(path, ARTIFACTS / path.name)
        return path

    return save
