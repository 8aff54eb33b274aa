"""The portal server of the access tests (imported as `portal_server`; conftest.py puts this folder
on sys.path): two collections, one access group, five API keys.

    default   field_guide.pdf, travel_policy.docx (no groups: every reader of default)
              security.md, group "hr" (only keys in hr; it holds "extension 4411")
    legal     vault.md (only keys that may read "legal"; it holds "ZEBRA")

The portal is module-scoped and read-only; tests that change documents build their own."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from citekb.api.collections import Collections
from citekb.api.http.app import create_app
from citekb.api.kb import KnowledgeBase
from citekb.api.keys import KeyStore

from api_contract import make_kb

HR_TEXT = "4411"  # only in security.md, group hr
LEGAL_TEXT = "ZEBRA"  # only in the legal collection
VAULT_MD = "# Vault Rules\n\nThe vault door code is ZEBRA 7731.\n\nOnly the archivist opens the vault.\n"
VAULT_QUESTION = "What is the vault door code?"
KEY_SCOPES: dict[str, tuple[dict[str, str], list[str]]] = {
    "reader": ({"default": "read"}, []),
    "hr": ({"default": "read"}, ["hr"]),
    "legal": ({"legal": "read"}, []),
    "writer": ({"default": "write"}, []),
    "admin": ({"*": "write"}, ["*"]),
}


@dataclass
class Portal:
    index: Path
    kb: KnowledgeBase
    client: TestClient
    keys: dict[str, str]  # key name -> its secret
    key_ids: dict[str, str]

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def build_portal(root: Path, corpus_dir: Path, **settings: Any) -> tuple[KnowledgeBase, dict[str, str], dict[str, str]]:
    """The portal's index under root (see the module docstring) and its keys' secrets and ids."""
    index = root / "idx"
    kb = make_kb(index, rate_limit_per_min=0, **settings)
    kb.ingest([corpus_dir / "field_guide.pdf", corpus_dir / "travel_policy.docx"])
    kb.ingest([corpus_dir / "security.md"], groups=["hr"])
    collections = Collections(kb)
    collections.create("legal")
    vault = root / "vault.md"
    vault.write_text(VAULT_MD, "utf-8")
    collections.get("legal").ingest([vault])
    store = KeyStore.for_index(index)
    secrets, ids = {}, {}
    for name, (rights, groups) in KEY_SCOPES.items():
        created = store.create(name, rights, groups)  # type: ignore[arg-type]
        secrets[name], ids[name] = created.secret, created.key.id
    return kb, secrets, ids


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """app on a real uvicorn server on 127.0.0.1 (a free port), in a thread; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):  # started within 5 s, or the test fails below
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
