"""A key only ever gets text it may read: another collection's or another group's never shows in
search, ask, chat, the document list or a delete, and the group limit is a row mask handed to
both search legs, not a filter of the final list."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from citekb.retrieval.store import Snapshot

from api_contract import MD_QUESTION, PDF_QUESTION
from portal_server import HR_TEXT, LEGAL_TEXT, VAULT_QUESTION, Portal

READING = [("POST", "search", {"query": MD_QUESTION, "k": 100}), ("POST", "ask", {"query": MD_QUESTION}),
           ("POST", "chat/completions", {"model": "citekb", "messages": [{"role": "user", "content": MD_QUESTION}]}),
           ("GET", "documents", None)]


def call(portal: Portal, key: str | None, method: str, path: str, body: Any = None) -> Any:
    headers = portal.auth(key) if key else {}
    return portal.client.request(method, path, headers=headers, json=body)


def sources(body: dict[str, Any]) -> set[str]:
    """Every document name a search, ask, chat or documents response mentions."""
    items = body.get("hits", []) + body.get("citations", []) + body.get("documents", [])
    return {item["source"] for item in items}


# --------------------------------------------------------------------------- keys

def test_without_a_key_every_route_is_401_once_keys_exist(portal: Portal) -> None:
    for method, path, body in READING:
        response = call(portal, None, method, f"/v1/{path}", body)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key is required" in response.json()["error"]


@pytest.mark.parametrize("header", ["Bearer ckb_000000000000_" + "A" * 43, "Bearer not-a-key", "Basic dXNlcjpwYXNz", "Bearer "])
def test_a_wrong_key_is_401(portal: Portal, header: str) -> None:
    response = portal.client.post("/v1/search", json={"query": PDF_QUESTION}, headers={"Authorization": header})
    assert response.status_code == 401 and response.json() == {"error": "invalid or revoked API key"}


def test_a_key_with_one_character_changed_is_refused(portal: Portal) -> None:
    secret = portal.keys["admin"]
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    response = portal.client.get("/v1/documents", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


# --------------------------------------------------------------------------- collections

@pytest.mark.parametrize(("method", "path", "body"), READING)
def test_a_key_for_one_collection_is_403_on_another(portal: Portal, method: str, path: str, body: Any) -> None:
    response = call(portal, "legal", method, f"/v1/{path}", body)  # /v1/... is the default collection
    assert response.status_code == 403 and "may not read collection 'default'" in response.json()["error"]
    response = call(portal, "reader", method, f"/v1/collections/legal/{path}", body)
    assert response.status_code == 403 and "may not read collection 'legal'" in response.json()["error"]


def test_a_missing_collection_is_403_without_rights_and_404_with_them(portal: Portal) -> None:
    # A key learns nothing about collections it has no right to: same answer whether they exist.
    assert call(portal, "reader", "GET", "/v1/collections/nosuch/documents").status_code == 403
    response = call(portal, "admin", "GET", "/v1/collections/nosuch/documents")
    assert response.status_code == 404 and response.json() == {"error": "no collection 'nosuch' on this server"}


def test_each_collection_answers_from_its_own_documents(portal: Portal) -> None:
    legal = call(portal, "legal", "POST", "/v1/collections/legal/ask", {"query": VAULT_QUESTION}).json()
    assert LEGAL_TEXT in legal["answer"] and sources(legal) == {"vault.md"}
    # The admin reads every collection, yet the default collection never holds the legal text.
    default = call(portal, "admin", "POST", "/v1/search", {"query": VAULT_QUESTION, "k": 100}).json()
    assert default["hits"] and not any(LEGAL_TEXT in h["text"] for h in default["hits"])
    assert "vault.md" not in sources(default)


def test_collections_lists_only_what_the_key_may_read(portal: Portal) -> None:
    def listed(key: str) -> dict[str, tuple[int, str]]:
        body = call(portal, key, "GET", "/v1/collections").json()
        return {c["name"]: (c["documents"], c["right"]) for c in body["collections"]}

    assert listed("reader") == {"default": (2, "read")}  # security.md is in group hr
    assert listed("hr") == {"default": (3, "read")}
    assert listed("legal") == {"legal": (1, "read")}
    assert listed("admin") == {"default": (3, "write"), "legal": (1, "write")}


# --------------------------------------------------------------------------- groups

def test_a_key_outside_a_group_never_gets_its_text(portal: Portal) -> None:
    for method, path, body in READING:
        response = call(portal, "reader", method, f"/v1/{path}", body)
        assert response.status_code == 200, response.text
        assert HR_TEXT not in response.text and "security.md" not in response.text, path
        assert sources(response.json()) <= {"field_guide.pdf", "travel_policy.docx"}


def test_a_key_in_the_group_gets_its_text(portal: Portal) -> None:
    search = call(portal, "hr", "POST", "/v1/search", {"query": MD_QUESTION, "k": 1}).json()
    assert [h["source"] for h in search["hits"]] == ["security.md"]
    ask = call(portal, "hr", "POST", "/v1/ask", {"query": MD_QUESTION}).json()
    assert HR_TEXT in ask["answer"] and [c["source"] for c in ask["citations"]] == ["security.md"]
    documents = call(portal, "hr", "GET", "/v1/documents").json()["documents"]
    assert {d["source"]: d["groups"] for d in documents} == {
        "field_guide.pdf": [], "travel_policy.docx": [], "security.md": ["hr"]}


def test_a_streamed_chat_outside_the_group_never_carries_its_text(portal: Portal) -> None:
    body = {"model": "citekb", "stream": True, "messages": [{"role": "user", "content": MD_QUESTION}]}
    for key, sees in (("reader", False), ("hr", True)):
        with portal.client.stream("POST", "/v1/chat/completions", json=body, headers=portal.auth(key)) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
        assert (HR_TEXT in text) is sees and ("security.md" in text) is sees, key


def test_a_hidden_document_cannot_be_deleted_and_looks_absent(portal: Portal, tmp_path: Any) -> None:
    hidden = next(r.doc_id for r in portal.kb.documents() if r.source == "security.md")
    # Only the admin writes here; the writer key has no hr group: the document is not there for it.
    response = portal.client.delete(f"/v1/documents/{hidden}", headers=portal.auth("writer"))
    assert response.status_code == 404 and response.json() == {"error": f"no document with doc_id {hidden!r} in the index"}
    assert hidden in {r.doc_id for r in portal.kb.documents()}
    # The reader may not write at all.
    visible = next(r.doc_id for r in portal.kb.documents() if r.source == "field_guide.pdf")
    assert portal.client.delete(f"/v1/documents/{visible}", headers=portal.auth("reader")).status_code == 403


def test_the_group_limit_is_a_mask_inside_both_search_legs(portal: Portal, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = portal.kb.snapshot()
    masks: dict[str, Any] = {}
    for leg in ("keyword", "dense"):
        index = getattr(snapshot, leg)
        original = index.search

        def spy(query: Any, k: int, mask: Any = None, _leg: str = leg, _original: Any = original) -> Any:
            masks[_leg] = mask
            return _original(query, k, mask)

        monkeypatch.setattr(index, "search", spy)
    hidden = np.array([c.locator.source == "security.md" for c in snapshot.chunks])
    hits = call(portal, "reader", "POST", "/v1/search", {"query": MD_QUESTION, "k": 100}).json()["hits"]
    assert set(masks) == {"keyword", "dense"}
    for leg, mask in masks.items():
        assert mask is not None and np.array_equal(mask, ~hidden), leg
    # Every readable chunk can still come back: nothing was cut from a list that held hidden ones.
    assert len(hits) <= int((~hidden).sum())
    masks.clear()
    call(portal, "admin", "POST", "/v1/search", {"query": MD_QUESTION})
    assert masks == {"keyword": None, "dense": None}  # all groups: no mask at all


def test_k_hits_come_back_from_readable_documents_when_hidden_ones_match_better(portal: Portal) -> None:
    # With a filter after the search, a reader asking for k=1 would get nothing: the best match
    # (security.md) would be cut. With the mask, its best readable match comes back.
    [hit] = call(portal, "reader", "POST", "/v1/search", {"query": "security desk extension", "k": 1}).json()["hits"]
    assert hit["source"] != "security.md"


def test_snapshot_readable_mask(make_snapshot: Any) -> None:
    snapshot: Snapshot = make_snapshot()
    pdf, docx, md = sorted(snapshot.documents.values(), key=lambda r: r.source)[::1][:3]
    md.groups = ["hr", "it"]
    docx.groups = ["finance"]
    rows = np.array([c.locator.doc_id for c in snapshot.chunks])
    assert snapshot.readable(None) is None
    assert np.array_equal(snapshot.readable(frozenset()), rows == pdf.doc_id)
    assert np.array_equal(snapshot.readable(frozenset({"it"})), (rows == pdf.doc_id) | (rows == md.doc_id))
    assert snapshot.readable(frozenset({"it", "finance"})) is None  # every document readable: no mask


def test_an_index_written_before_groups_loads_with_no_groups(tmp_path: Any, make_snapshot: Any) -> None:
    snapshot: Snapshot = make_snapshot()
    snapshot.save(tmp_path / "snap")
    docs = json.loads((tmp_path / "snap" / "docs.json").read_text("utf-8"))
    for record in docs.values():
        del record["groups"]
    (tmp_path / "snap" / "docs.json").write_text(json.dumps(docs), "utf-8")
    loaded = Snapshot.load(tmp_path / "snap")
    assert loaded.documents.keys() == snapshot.documents.keys()
    assert all(r.groups == [] for r in loaded.documents.values())


# --------------------------------------------------------------------------- the viewer and original files

def viewer_paths(portal: Portal, source: str, collection: str = "default") -> list[str]:
    kb = portal.kb if collection == "default" else portal.client.app.state.server.collections.get(collection)  # type: ignore[attr-defined]
    snapshot = kb.snapshot()
    doc_id = next(r.doc_id for r in snapshot.documents.values() if r.source == source)
    chunk_id = next(c.chunk_id for c in snapshot.chunks if c.locator.doc_id == doc_id)
    return [f"/documents/{doc_id}", f"/documents/{doc_id}/view?chunk_id={chunk_id}"]


def test_the_viewer_and_files_of_a_hidden_document_are_404_for_a_key_outside_its_group(portal: Portal) -> None:
    for path in viewer_paths(portal, "security.md"):
        hidden = portal.client.get("/v1" + path, headers=portal.auth("reader"))
        assert hidden.status_code == 404 and HR_TEXT not in hidden.text, path
        shown = portal.client.get("/v1" + path, headers=portal.auth("hr"))
        assert shown.status_code == 200 and HR_TEXT in shown.text, path
    pdf_id = viewer_paths(portal, "field_guide.pdf")[0].split("/")[2]
    assert portal.client.get(f"/v1/documents/{pdf_id}/pages/1.png", headers=portal.auth("reader")).status_code == 200
    assert portal.client.get(f"/v1/documents/{pdf_id}/pages/1.png", headers=portal.auth("legal")).status_code == 403


def test_the_viewer_keeps_collections_apart(portal: Portal) -> None:
    for path in viewer_paths(portal, "vault.md", "legal"):
        # Through the default collection the legal document does not exist, whoever asks.
        assert portal.client.get("/v1" + path, headers=portal.auth("admin")).status_code == 404, path
        assert portal.client.get("/v1/collections/legal" + path, headers=portal.auth("reader")).status_code == 403, path
        shown = portal.client.get("/v1/collections/legal" + path, headers=portal.auth("legal"))
        assert shown.status_code == 200 and LEGAL_TEXT in shown.text, path


def test_a_document_repaired_from_its_file_keeps_its_groups(tmp_path: Any, corpus_dir: Any) -> None:
    from api_contract import make_kb

    kb = make_kb(tmp_path / "idx")
    kb.ingest([corpus_dir / "field_guide.pdf"])
    kb.ingest([corpus_dir / "security.md"], groups=["hr"])
    chunks_file = kb.store.current() / "chunks.jsonl"
    data = chunks_file.read_bytes()
    chunks_file.write_bytes(data[: len(data) - len(data.splitlines()[-1]) // 2 - 1])  # security.md's last chunk cut
    report = kb.repair()
    assert any(a.startswith("ingested") and "security.md" in a for a in report.actions), report.actions
    assert {r.source: r.groups for r in kb.store.load().documents.values()} == {"field_guide.pdf": [], "security.md": ["hr"]}
    assert HR_TEXT not in " ".join(h.chunk.text for h in kb.search(MD_QUESTION, k=100, groups=frozenset()))
