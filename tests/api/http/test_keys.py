"""API keys: stored hashed, shown once, revoked for good; the auth mode (open with no keys on
loopback only, keys required once one exists or with CITEKB_AUTH=required); `citekb keys`,
`citekb collections` and `ingest --group/--collection`."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from citekb.api.http.app import create_app
from citekb.api.http.auth import Server
from citekb.api.keys import KeyFileError, KeyStore, parse_scope
from citekb.ingest.errors import ConfigError

from api_contract import PDF_QUESTION, RunCli, make_kb


def test_a_key_is_stored_as_its_hash_and_verified(tmp_path: Path) -> None:
    store = KeyStore.for_index(tmp_path)
    created = store.create("portal", {"default": "read", "hr": "write"}, ["hr", "finance", "hr"])
    secret = created.secret
    assert secret.startswith(f"ckb_{created.key.id}_")
    text = (tmp_path / "keys.json").read_text("utf-8")
    assert secret not in text and secret.split("_", 2)[2] not in text
    assert hashlib.sha256(secret.split("_", 2)[2].encode()).hexdigest() in text
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600
    key = store.verify(secret)
    assert key is not None and key.id == created.key.id
    assert key.collections == {"default": "read", "hr": "write"} and key.groups == ["finance", "hr"]
    assert store.verify(secret + "x") is None and store.verify("") is None


def test_a_revoked_key_fails_at_once_in_another_store_on_the_same_file(tmp_path: Path) -> None:
    server_side, cli_side = KeyStore.for_index(tmp_path), KeyStore.for_index(tmp_path)
    created = cli_side.create("portal", {"default": "read"}, [])
    assert server_side.verify(created.secret) is not None  # a key made elsewhere is seen without a restart
    cli_side.revoke(created.key.id)
    assert server_side.verify(created.secret) is None
    assert not server_side.has_active() and server_side.keys()[0].revoked_at is not None


def test_a_damaged_key_file_closes_the_server(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "idx")
    KeyStore.for_index(kb.settings.index).create("portal", {"default": "read"}, [])
    (kb.settings.index / "keys.json").write_text("{not json", "utf-8")
    with pytest.raises(KeyFileError):
        KeyStore.for_index(kb.settings.index).keys()
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        response = client.get("/v1/documents")  # not open for want of keys: refused
        assert response.status_code == 503 and "cannot read the API key file keys.json" in response.json()["error"]


@pytest.mark.parametrize(("scopes", "groups", "error"), [
    ({"Default": "read"}, [], "invalid collection name 'Default'"),
    ({"default": "admin"}, [], "invalid right 'admin'"),
    ({}, [], "at least one collection"),
    ({"default": "read"}, ["h r"], "invalid access group 'h r'"),
])
def test_bad_key_scopes_are_refused(tmp_path: Path, scopes: dict[str, str], groups: list[str], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        KeyStore.for_index(tmp_path).create("portal", scopes, groups)  # type: ignore[arg-type]
    assert not (tmp_path / "keys.json").exists()


def test_parse_scope() -> None:
    assert parse_scope("hr") == ("hr", "read")
    assert parse_scope("hr:write") == ("hr", "write")
    assert parse_scope("*:read") == ("*", "read")


# --------------------------------------------------------------------------- auth mode

def test_with_no_keys_the_server_is_open_and_a_first_key_closes_it(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "idx")
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        assert client.get("/v1/documents").status_code == 200
        assert client.put("/v1/collections/team").status_code == 201  # anonymous may do everything
        created = KeyStore.for_index(kb.settings.index).create("portal", {"default": "read"}, [])
        assert client.get("/v1/documents").status_code == 401
        assert client.get("/v1/documents", headers={"Authorization": f"Bearer {created.secret}"}).status_code == 200


def test_auth_required_refuses_everyone_until_a_key_exists(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "idx", auth="required")
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        assert client.post("/v1/search", json={"query": PDF_QUESTION}).status_code == 401


def test_an_open_server_is_refused_beyond_loopback(tmp_path: Path) -> None:
    server = Server.for_kb(make_kb(tmp_path / "idx"))
    for host in ("127.0.0.1", "::1", "localhost"):
        server.check_exposure(host)
    for host in ("0.0.0.0", "192.168.1.5", "citekb.internal"):
        with pytest.raises(ConfigError, match="without API keys"):
            server.check_exposure(host)
    server.keys.create("portal", {"default": "read"}, [])
    server.check_exposure("0.0.0.0")


def test_serve_refuses_to_open_an_index_to_the_network_without_keys(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("serve", "--host", "0.0.0.0", "--index", tmp_path / "idx")
    assert result.exit_code == 1 and "refusing to serve 0.0.0.0 without API keys" in result.stderr


# --------------------------------------------------------------------------- CLI

def test_keys_cli_creates_shows_once_lists_and_revokes(run_cli: RunCli, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    result = run_cli("keys", "create", "intranet", "-c", "default:write", "-c", "hr", "-g", "hr", "--index", index, "--json")
    assert result.exit_code == 0, result.stderr
    made = result.json()
    assert made["collections"] == {"default": "write", "hr": "read"} and made["groups"] == ["hr"]
    assert KeyStore.for_index(index).verify(made["key"]) is not None
    listed = run_cli("keys", "list", "--index", index, "--json").json()["keys"]
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0] and "sha256" not in listed[0]
    plain = run_cli("keys", "create", "kiosk", "--index", index)
    assert plain.exit_code == 0 and plain.stdout.strip().startswith("ckb_") and "cannot be shown again" in plain.stderr
    assert run_cli("keys", "revoke", made["id"], "--index", index).exit_code == 0
    assert KeyStore.for_index(index).verify(made["key"]) is None
    assert "REVOKED" in run_cli("keys", "list", "--index", index).stdout
    missing = run_cli("keys", "revoke", "000000000000", "--index", index)
    assert missing.exit_code == 1 and "no API key with id '000000000000'" in missing.stderr
    bad = run_cli("keys", "create", "x", "-c", "default:admin", "--index", index)
    assert bad.exit_code == 1 and "invalid right 'admin'" in bad.stderr


def test_ingest_group_and_collection_from_the_cli(run_cli: RunCli, tmp_path: Path, corpus_dir: Path) -> None:
    index = tmp_path / "idx"
    assert run_cli("ingest", corpus_dir / "security.md", "--group", "hr", "--group", "it", "--index", index).exit_code == 0
    [doc] = run_cli("docs", "list", "--index", index, "--json").json()["documents"]
    assert doc["groups"] == ["hr", "it"]
    # Ingesting the same file again with other groups regroups it; without --group keeps them.
    assert run_cli("ingest", corpus_dir / "security.md", "--group", "it", "--index", index).exit_code == 0
    assert run_cli("docs", "list", "--index", index, "--json").json()["documents"][0]["groups"] == ["it"]
    assert run_cli("ingest", corpus_dir / "security.md", "--index", index).exit_code == 0
    assert run_cli("docs", "list", "--index", index, "--json").json()["documents"][0]["groups"] == ["it"]
    bad = run_cli("ingest", corpus_dir / "security.md", "--group", "a b", "--index", index)
    assert bad.exit_code == 1 and "invalid access group 'a b'" in bad.stderr

    missing = run_cli("ingest", corpus_dir / "field_guide.pdf", "--collection", "legal", "--index", index)
    assert missing.exit_code == 1 and "no collection 'legal'" in missing.stderr
    assert run_cli("collections", "create", "legal", "--index", index).exit_code == 0
    assert run_cli("ingest", corpus_dir / "field_guide.pdf", "--collection", "legal", "--index", index).exit_code == 0
    listed = run_cli("collections", "list", "--index", index, "--json").json()["collections"]
    assert [(c["name"], c["documents"]) for c in listed] == [("default", 1), ("legal", 1)]
    assert Path(listed[1]["path"]) == index / "collections" / "legal"
    assert run_cli("collections", "delete", "legal", "--yes", "--index", index).exit_code == 0
    assert [c["name"] for c in run_cli("collections", "list", "--index", index, "--json").json()["collections"]] == ["default"]
    assert not (index / "collections" / "legal").exists()


def test_keys_file_lives_in_the_index_directory(run_cli: RunCli, tmp_path: Path) -> None:
    run_cli("keys", "create", "portal", "--index", tmp_path / "idx")
    data = json.loads((tmp_path / "idx" / "keys.json").read_text("utf-8"))
    assert data["version"] == 1 and [k["name"] for k in data["keys"]] == ["portal"]


def test_collections_on_a_shared_milvus_server_get_their_own_milvus_collections(tmp_path: Path) -> None:
    from citekb.api.collections import Collections, milvus_collection_for

    kb = make_kb(tmp_path / "idx", milvus_uri="http://milvus.internal:19530")
    collections = Collections(kb)
    for name in ("a-b", "a_b", "team"):
        collections.create(name)
    names = {collections.get(n).settings.milvus_collection for n in ("default", "a-b", "a_b", "team")}
    assert names == {"citekb", "citekb__a_1b", "citekb__a_0b", "citekb__team"}
    assert milvus_collection_for("citekb", "a-b") != milvus_collection_for("citekb", "a_b")
    embedded = Collections(make_kb(tmp_path / "idx2"))
    embedded.create("team")  # milvus-lite lives in each index directory: the name can stay
    assert embedded.get("team").settings.milvus_collection == "citekb"
    assert embedded.get("team").settings.index == tmp_path / "idx2" / "collections" / "team"
