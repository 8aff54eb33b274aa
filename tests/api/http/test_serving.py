"""What a portal server does around the routes: per-key rate limits (429 with Retry-After),
request IDs and the access log, the CORS allow-list, uploads with access groups, and the
collections API."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from citekb.api.http.app import create_app
from citekb.api.http.ratelimit import RateLimiter
from citekb.api.keys import KeyStore
from citekb.api.settings import Settings

from api_contract import MD_QUESTION, PDF_QUESTION, make_kb
from portal_server import HR_TEXT, Portal


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# --------------------------------------------------------------------------- rate limits

def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_min=60, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)  # one token a second
    assert limiter.take("b") == 0.0  # another key has its own bucket
    now[0] = 0.5
    assert limiter.take("a") == pytest.approx(0.5)  # a refused request spends nothing
    now[0] = 1.0
    assert limiter.take("a") == 0.0
    now[0] = 100.0
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refilled to the burst, never beyond
    assert RateLimiter(per_min=0, burst=1).take("a") == 0.0  # 0: no limit


def test_a_key_past_its_rate_is_429_with_retry_after(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "idx", rate_limit_per_min=2, rate_limit_burst=2)
    store = KeyStore.for_index(kb.settings.index)
    first, second = (store.create(n, {"default": "read"}, []).secret for n in ("first", "second"))
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        assert [client.get("/v1/documents", headers=bearer(first)).status_code for _ in range(2)] == [200, 200]
        refused = client.get("/v1/documents", headers=bearer(first))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 30
        assert refused.json() == {"error": f"rate limit exceeded; retry in {refused.headers['retry-after']} s"}
        assert client.get("/v1/documents", headers=bearer(second)).status_code == 200


# --------------------------------------------------------------------------- request IDs and the access log

def test_request_ids_are_kept_or_made_and_logged_with_the_key(portal: Portal, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="citekb.access"):
        kept = portal.client.get("/v1/documents", headers={**portal.auth("reader"), "X-Request-ID": "portal-42.a"})
        made = portal.client.get("/v1/documents", headers={"X-Request-ID": "bad id\twith spaces"})
    assert kept.headers["x-request-id"] == "portal-42.a"
    assert made.status_code == 401 and len(made.headers["x-request-id"]) == 32 and made.headers["x-request-id"] != "bad id"
    lines = [r.getMessage() for r in caplog.records if r.name == "citekb.access"]
    assert len(lines) == 2
    assert lines[0].startswith("request_id=portal-42.a method=GET path=/v1/documents status=200 duration_ms=")
    assert lines[0].endswith(f"key={portal.key_ids['reader']} client=testclient")
    assert f"request_id={made.headers['x-request-id']} " in lines[1] and "status=401" in lines[1] and "key=- " in lines[1]


# --------------------------------------------------------------------------- CORS

def test_cors_allows_only_the_listed_origins(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "idx", cors_origins=["https://portal.example.com"])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        allowed = client.options("/v1/chat/completions", headers={"Origin": "https://portal.example.com", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://portal.example.com"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = client.options("/v1/chat/completions", headers={"Origin": "https://evil.example", **preflight})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        simple = client.get("/v1/documents", headers={"Origin": "https://portal.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://portal.example.com"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    with TestClient(create_app(make_kb(tmp_path / "idx2"))) as client:
        assert "access-control-allow-origin" not in client.get("/v1/documents", headers={"Origin": "https://portal.example.com"}).headers


def test_cors_origins_come_comma_separated_and_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITEKB_CORS_ORIGINS", "https://a.example, http://b.example:8080")
    assert Settings().cors_origins == ["https://a.example", "http://b.example:8080"]
    monkeypatch.setenv("CITEKB_CORS_ORIGINS", "https://a.example/path")
    with pytest.raises(ValidationError, match="is not"):
        Settings()


# --------------------------------------------------------------------------- uploads with groups

def upload(client: TestClient, headers: dict[str, str], path: str, name: str, data: bytes,
           groups: list[str] | None = None) -> object:
    return client.post(path, headers=headers, files=[("files", (name, data, "text/markdown"))],
                       data={"groups": groups} if groups is not None else None)


def test_an_upload_sets_groups_and_needs_write(tmp_path: Path, corpus_dir: Path) -> None:
    kb = make_kb(tmp_path / "idx")
    store = KeyStore.for_index(kb.settings.index)
    writer = bearer(store.create("writer", {"default": "write"}, ["hr"]).secret)
    reader = bearer(store.create("reader", {"default": "read"}, []).secret)
    data = (corpus_dir / "security.md").read_bytes()
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        assert upload(client, reader, "/v1/documents", "security.md", data).status_code == 403  # type: ignore[attr-defined]
        bad = upload(client, writer, "/v1/documents", "security.md", data, ["no way"])
        assert bad.status_code == 400 and "invalid access group 'no way'" in bad.json()["error"]  # type: ignore[attr-defined]
        assert not list((kb.settings.index / "uploads").glob("*.md"))  # refused before any file was kept
        done = upload(client, writer, "/v1/documents", "security.md", data, ["hr", "it"])
        assert done.status_code == 200 and done.json()["failed"] == []  # type: ignore[attr-defined]
        [doc] = client.get("/v1/documents", headers=writer).json()["documents"]
        assert doc["groups"] == ["hr", "it"]
        assert client.get("/v1/documents", headers=reader).json() == {"documents": []}
        hits = client.post("/v1/search", json={"query": MD_QUESTION}, headers=reader).json()["hits"]
        assert hits == []  # its only document is in groups the reader is not in
        assert HR_TEXT in client.post("/v1/ask", json={"query": MD_QUESTION}, headers=writer).json()["answer"]


# --------------------------------------------------------------------------- the collections API

def test_collections_are_created_filled_and_deleted_through_the_api(tmp_path: Path, corpus_dir: Path) -> None:
    kb = make_kb(tmp_path / "idx", max_upload_mb=0.001)
    store = KeyStore.for_index(kb.settings.index)
    admin = bearer(store.create("admin", {"*": "write"}, ["*"]).secret)
    team = bearer(store.create("team", {"team": "write"}, []).secret)
    data = (corpus_dir / "security.md").read_bytes()
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        assert client.put("/v1/collections/other", headers=team).status_code == 403
        assert client.put("/v1/collections/Bad.Name", headers=admin).status_code == 422
        assert client.get("/v1/collections/team/documents", headers=team).status_code == 404
        created = client.put("/v1/collections/team", headers=team)
        assert created.status_code == 201 and created.json() == {"name": "team", "documents": 0, "right": "write"}
        assert client.put("/v1/collections/team", headers=team).status_code == 200
        response = upload(client, team, "/v1/collections/team/documents", "security.md", data)
        assert response.status_code == 200, response.text  # type: ignore[attr-defined]
        assert (kb.settings.index / "collections" / "team" / "uploads" / "security.md").is_file()
        assert HR_TEXT in client.post("/v1/collections/team/ask", json={"query": MD_QUESTION}, headers=team).json()["answer"]
        assert client.post("/v1/search", json={"query": PDF_QUESTION}, headers=admin).status_code == 404  # default: empty
        big = upload(client, team, "/v1/collections/team/documents", "big.md", b"x" * (2 * 2**20 + 10))
        assert big.status_code == 413 and "CITEKB_MAX_UPLOAD_MB" in big.json()["error"]  # type: ignore[attr-defined]
        assert client.delete("/v1/collections/default", headers=admin).status_code == 400
        assert client.delete("/v1/collections/team", headers=team).status_code == 204
        assert client.get("/v1/collections/team/documents", headers=team).status_code == 404
        assert [c["name"] for c in client.get("/v1/collections", headers=admin).json()["collections"]] == ["default"]


def test_idle_buckets_are_dropped_past_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from citekb.api.http import ratelimit

    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 3)
    now = [0.0]
    limiter = RateLimiter(per_min=60, burst=2, clock=lambda: now[0])
    for caller in "abc":
        limiter.take(caller)
    now[0] = 10.0  # a, b and c have refilled
    limiter.take("d")
    limiter.take("d")
    assert limiter.take("d") > 0  # d keeps its (empty) bucket
    assert limiter.take("a") == 0.0 and len(limiter._buckets) <= 3


# --------------------------------------------------------------------------- dependencies for other routes

def test_require_read_and_write_guard_a_route_that_names_its_collection(portal: Portal) -> None:
    from fastapi import Depends, FastAPI

    from citekb.api.http.auth import Access, Server, require_read, require_write

    app = FastAPI()
    app.state.server = Server.for_kb(portal.kb)

    @app.get("/legal-count")
    def legal_count(access: Access = Depends(require_read("legal"))) -> int:
        return len(access.documents())

    @app.post("/legal-touch")
    def legal_touch(access: Access = Depends(require_write("legal"))) -> str:
        return access.collection

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/legal-count", headers=portal.auth("legal")).json() == 1
        assert client.get("/legal-count", headers=portal.auth("reader")).status_code == 403
        assert client.get("/legal-count").status_code == 401
        assert client.post("/legal-touch", headers=portal.auth("legal")).status_code == 403
        assert client.post("/legal-touch", headers=portal.auth("admin")).json() == "legal"


def test_a_key_revoked_while_the_server_runs_is_refused_on_its_next_request(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "idx")
    store = KeyStore.for_index(kb.settings.index)
    kept, revoked = (store.create(n, {"default": "read"}, []) for n in ("kept", "revoked"))
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        assert client.get("/v1/documents", headers=bearer(revoked.secret)).status_code == 200
        KeyStore.for_index(kb.settings.index).revoke(revoked.key.id)  # as `citekb keys revoke` does
        assert client.get("/v1/documents", headers=bearer(revoked.secret)).status_code == 401
        assert client.get("/v1/documents", headers=bearer(kept.secret)).status_code == 200
