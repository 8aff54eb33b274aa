"""What the browser and viewer tests share: a citekb server on 127.0.0.1 run by uvicorn in a
thread, a portal's pages on another port, and the two together over the tiny corpus. Imported as
`site_server` (conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from citekb.api.http.app import create_app
from citekb.api.kb import KnowledgeBase
from citekb.api.keys import KeyStore

API_TESTS_DIR = Path(__file__).resolve().parent.parent / "api"
if str(API_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(API_TESTS_DIR))

from api_contract import make_kb  # noqa: E402

START_TIMEOUT_S = 30.0


@dataclass
class Site:
    api: str  # http://127.0.0.1:PORT, the citekb server
    portal: str  # the portal page, on another port: another origin, as a real portal is
    kb: KnowledgeBase
    read_key: str
    write_key: str
    corpus: Path  # where the documents were ingested from
    pages: dict[str, str] = field(default_factory=dict)  # the portal's pages by path; tests may add some


@contextlib.contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """Runs app under uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:  # waits for the server to listen, not for anything under test
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def serve_pages(pages: dict[str, str]) -> Iterator[str]:
    """A plain HTTP server for a portal's pages: path -> HTML (filled in after it starts, since a
    page names the citekb server, which is told this server's origin). Yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = pages.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def portal_page(api: str, key: str, collection: str = "") -> str:
    extra = f' data-collection="{collection}"' if collection else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Acme intranet</title>"
        "<style>body{font-family:serif;margin:40px} input{border:5px solid red}</style></head><body>"
        "<h1>Acme intranet</h1><p>Questions about pumps, travel or security? Ask below.</p>"
        f'<script src="{api}/widget/widget.js" data-key="{key}"{extra}></script>'
        "<p>Footer of the portal.</p></body></html>"
    )


@contextlib.contextmanager
def running_site(root: Path, corpus_dir: Path) -> Iterator[Site]:
    """The tiny corpus ingested into a fresh index under root, served with keys in force and
    CORS open to the portal's origin; the portal's / embeds the widget with the read key."""
    corpus = root / "corpus"
    shutil.copytree(corpus_dir, corpus)
    pages: dict[str, str] = {}
    with serve_pages(pages) as portal:
        kb = make_kb(root / "idx", cors_origins=[portal], rate_limit_per_min=0)
        report = kb.ingest([corpus])
        assert not report.failed, report.failed
        keys = KeyStore.for_index(kb.settings.index)
        read_key = keys.create("portal", {"default": "read"}, ["*"]).secret
        write_key = keys.create("admin", {"default": "write"}, ["*"]).secret
        with serve_app(create_app(kb)) as api:
            pages["/"] = portal_page(api, read_key)
            yield Site(api, portal + "/", kb, read_key, write_key, corpus, pages)
