"""Property-based fuzzing of the HTTP API (hypothesis, and schemathesis on the app's own OpenAPI).

Whatever a client sends: never a 5xx; the status the request schema implies (422 for any invalid
field, 413 over the size limit, 400 for an unknown backend, else 200); every 4xx is exactly
{"error": "<non-empty text>"}; every 200 has the contract's shape (located hits, best first, at
most k; citations numbered 1..n whose [n] markers are in the answer); an upload writes only under
INDEX/uploads/ and leaves no staging folder behind; a body over the limit is a 413 whether or not
it declares its length.

The apps here are module-scoped and hypothesis reuses them across examples: what one example
uploads stays for the next, as it would on a real server. The hypothesis example database is
off, so a run leaves no files; a failure prints the @seed that reproduces it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from citekb.api.http.app import MAX_JSON_BODY_BYTES, UPLOAD_FRAMING_BYTES, create_app
from citekb.generation.factory import GENERATORS

from api_contract import CITATION_FIELDS, HIT_FIELDS, INGEST_FIELDS, assert_located, make_kb

CORPUS = ("field_guide.pdf", "security.md", "travel_policy.docx")
FUZZ = settings(max_examples=150, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- apps

@contextmanager
def serving(index: Path, corpus_dir: Path | None = None, **settings_: Any) -> Iterator[TestClient]:
    """A client on a fresh app over index (with the tiny corpus uploaded, given corpus_dir)."""
    # raise_server_exceptions=False: a crash reaches the test as the 500 a client would get.
    with TestClient(create_app(make_kb(index, **settings_)), raise_server_exceptions=False) as client:
        if corpus_dir is not None:
            files = [("files", (name, (corpus_dir / name).read_bytes(), "application/octet-stream")) for name in CORPUS]
            response = client.post("/v1/documents", files=files)
            assert response.status_code == 200 and response.json()["failed"] == [], response.text
        yield client


@pytest.fixture(scope="module")
def searchable(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[TestClient]:
    """A client on an index of the tiny corpus, for the reading endpoints."""
    with serving(tmp_path_factory.mktemp("fuzz-read") / "idx", corpus_dir) as client:
        yield client


@pytest.fixture(scope="module")
def upload_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-upload")


@pytest.fixture(scope="module")
def uploading(upload_root: Path, corpus_dir: Path) -> Iterator[TestClient]:
    """A client on its own index (upload_root/idx), for the upload fuzzing."""
    with serving(upload_root / "idx", corpus_dir) as client:
        yield client


# --------------------------------------------------------------------------- the properties

def check_error(response: Response) -> str:
    """A 4xx (never a 5xx) whose body is exactly {"error": "<non-empty text>"}; its message."""
    assert response.status_code < 500, (response.status_code, response.text)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"].strip(), body
    return body["error"]


def check_hits(hits: Any, at_most: int) -> dict[str, dict[str, Any]]:
    assert isinstance(hits, list) and len(hits) <= at_most
    for hit in hits:
        assert_located(hit, HIT_FIELDS)
        assert isinstance(hit["text"], str) and hit["text"]
        assert isinstance(hit["score"], float)
        assert isinstance(hit["scores"], dict) and all(isinstance(v, float) for v in hit["scores"].values())
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    by_chunk = {h["chunk_id"]: h for h in hits}
    assert len(by_chunk) == len(hits), "a chunk came back twice"
    return by_chunk


def check_search(response: Response, k: int = 10) -> None:
    """Never a 5xx; a 4xx is an error body; a 200 is {"hits": [at most k located hits, best first]}."""
    if response.status_code != 200:
        check_error(response)
        return
    body = response.json()
    assert set(body) == {"hits"}, body
    check_hits(body["hits"], k)


def check_ask(response: Response, k: int = 100) -> None:
    """Never a 5xx; a 4xx is an error body; a 200 is an answer whose citations are numbered 1..n,
    each [n] in the answer and each quoting one of the returned hits; no citations when ungrounded."""
    if response.status_code != 200:
        check_error(response)
        return
    body = response.json()
    assert set(body) == {"answer", "grounded", "citations", "hits", "sentences"}, body
    assert all(body["answer"][s["start"]:s["end"]] == s["text"] for s in body["sentences"])
    assert body["grounded"] or body["sentences"] == []
    assert isinstance(body["answer"], str) and body["answer"]
    assert isinstance(body["grounded"], bool)
    hits = check_hits(body["hits"], k)
    citations = body["citations"]
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    assert body["grounded"] or citations == []
    for citation in citations:
        assert_located(citation, CITATION_FIELDS)
        assert f"[{citation['n']}]" in body["answer"]
        assert citation["text"] in hits[citation["chunk_id"]]["text"]


def _k_of(body: Any, default: int) -> int:
    """The most hits a 200 may carry for this body: its k when that is a usable number."""
    k = body.get("k") if isinstance(body, dict) else None
    if isinstance(k, (int, float)) and not isinstance(k, bool) and k == k and abs(k) != float("inf"):
        return max(int(k), 0)
    return default


def expected_status(path: str, body: Any, size: int) -> int:
    """What the contract says a JSON body of this many bytes gets: 413 over the size limit; 422
    unless it is an object whose query is 1..4000 characters (no lone surrogates), not all
    whitespace, whose k is an integer 1..100 (a JSON integer: not true, 5.0 or "5"; null only for
    ask) and whose backend is text or null; 400 for an unknown backend, or one the app has no model
    for (UNCONFIGURED); else 200."""
    if size > MAX_JSON_BODY_BYTES:
        return 413
    if not isinstance(body, dict):
        return 422
    query, k, backend = body.get("query"), body.get("k", 10), body.get("backend")
    if not (isinstance(query, str) and 1 <= len(query) <= 4000 and query.strip() and _is_unicode(query)):
        return 422
    if not ((type(k) is int and 1 <= k <= 100) or (k is None and path == "/v1/ask")):
        return 422
    if path == "/v1/search":
        return 200
    if not (backend is None or (isinstance(backend, str) and _is_unicode(backend))):
        return 422
    return 400 if backend and (backend not in GENERATORS or backend in UNCONFIGURED) else 200


# Backends that need a model the test app is not given: asking for one is a 400 naming the setting.
UNCONFIGURED = frozenset({"openai", "transformers", "tinyllm"})


def _is_unicode(text: str) -> bool:
    return not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def post_json(client: TestClient, path: str, body: Any) -> Response:
    """Posts body as JSON and checks the status is the one expected_status gives."""
    # json.dumps escapes lone surrogates (\ud800) and writes NaN/Infinity, which strict JSON lacks.
    data = json.dumps(body).encode()
    response = client.post(path, content=data, headers={"content-type": "application/json"})
    assert response.status_code == expected_status(path, body, len(data)), (body, response.status_code, response.text)
    return response


# --------------------------------------------------------------------------- strategies

# Text with unicode of every kind, lone surrogates included (st.text() leaves those out).
any_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=60)
huge_text = st.builds(lambda piece, times: piece * times, any_text.filter(bool), st.integers(1, 40_000))
json_scalars = st.none() | st.booleans() | st.integers() | st.integers(-(10**40), 10**40) | st.floats() | any_text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
                           max_leaves=12)
queries = any_text | huge_text | st.sampled_from(["", " ", "\t\n", "\x00", "pump", "水泵", "[1]", "?" * 4001]) | json_values
ks = st.integers(-5, 105) | st.integers() | st.floats() | st.sampled_from([True, False, None, "5", "ten", [5], {"k": 5}]) | json_values
backends = st.sampled_from([None, "extractive", "", "EXTRACTIVE", "nope", "tinylm", "openai"]) | any_text | json_values
extra_keys = st.dictionaries(any_text.filter(lambda key: key not in ("query", "k", "backend")), json_values, max_size=3)
# A query a client may send: 1..4000 characters, not all whitespace, no lone surrogates.
valid_queries = st.text(min_size=1, max_size=300).filter(str.strip) | st.sampled_from(
    ["pump", "How often should the intake filter be replaced?", "水泵多久换一次滤网？", "!!!", "x" * 4000, "\x00a"])


def objects(query: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Request objects: this query, maybe k and backend of any JSON type, maybe unknown keys."""
    return st.builds(lambda required, optional, extra: {**extra, **required, **optional},
                     st.fixed_dictionaries({"query": query}),
                     st.fixed_dictionaries({}, optional={"k": ks, "backend": backends}), extra_keys)


# Objects with a usable query as well, so that k and backend alone decide the outcome often.
request_bodies = json_values | objects(queries) | objects(valid_queries)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
content_types = header_text | st.sampled_from([
    "application/json", "application/json; charset=utf-16", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data", "multipart/form-data; boundary=x", "application/json; charset=nope", "*/*", ";;;",
])
raw_bodies = st.binary(max_size=400) | st.sampled_from([
    b"", b"{", b"null", b"[]", b'{"query": "pump"', b'{"query": "\\ud800"}', b'{"query": NaN}', b"\xff\xfe{\x00}\x00",
    b'{"query": "pump", "query": 5}', b'{"query": "pump", "k": 1e309}', b"[" * 5000 + b"]" * 5000,
])


# --------------------------------------------------------------------------- search and ask

@FUZZ
@given(body=request_bodies)
def test_search_never_fails_on_any_json_body(searchable: TestClient, body: Any) -> None:
    check_search(post_json(searchable, "/v1/search", body), _k_of(body, 10))


@FUZZ
@given(body=request_bodies)
def test_ask_never_fails_on_any_json_body(searchable: TestClient, body: Any) -> None:
    check_ask(post_json(searchable, "/v1/ask", body), _k_of(body, 100))


@FUZZ
@given(query=valid_queries, k=st.none() | st.integers(1, 100))
def test_a_well_formed_search_is_answered(searchable: TestClient, query: str, k: int | None) -> None:
    response = searchable.post("/v1/search", json={"query": query} if k is None else {"query": query, "k": k})
    assert response.status_code == 200, response.text
    check_search(response, 10 if k is None else k)


@FUZZ
@given(query=valid_queries, k=st.none() | st.integers(1, 100), backend=st.sampled_from([None, "extractive"]))
def test_a_well_formed_ask_is_answered(searchable: TestClient, query: str, k: int | None, backend: str | None) -> None:
    response = searchable.post("/v1/ask", json={"query": query, "k": k, "backend": backend})
    assert response.status_code == 200, response.text
    check_ask(response, 5 if k is None else k)


@FUZZ
@given(path=st.sampled_from(["/v1/search", "/v1/ask"]), content_type=content_types, body=raw_bodies)
def test_garbage_bytes_and_content_types_are_4xx(searchable: TestClient, path: str, content_type: str, body: bytes) -> None:
    # No body here is a request object with a usable query (random bytes all but never are).
    check_error(searchable.post(path, content=body, headers={"content-type": content_type}))


# --------------------------------------------------------------------------- delete

@FUZZ
@given(doc_id=any_text.filter(bool) | st.sampled_from(["0" * 16, "../" * 5, "%2e%2e", "a/b", "..", "%00"]),
       escape=st.booleans())
def test_delete_of_any_path_deletes_nothing_and_is_a_json_4xx(searchable: TestClient, doc_id: str, escape: bool) -> None:
    before = searchable.get("/v1/documents").json()
    # Escaped, the id reaches the route whole; raw, "/", "?" and "#" reshape the URL first.
    raw = doc_id.encode("utf-8", "surrogatepass")
    path = quote(raw, safe="") if escape else quote(raw, safe="/?#%")
    response = searchable.delete(f"/v1/documents/{path}", follow_redirects=False)
    if response.is_redirect:  # Starlette's slash redirect; following it must not delete either
        response = searchable.delete(response.headers["location"], follow_redirects=False)
    assert response.status_code in (404, 405), (response.status_code, response.text)
    check_error(response)
    assert searchable.get("/v1/documents").json() == before


# --------------------------------------------------------------------------- uploads

SUFFIXES = ("", ".md", ".MD", ".pdf", ".docx", ".txt", ".md.", "/", "\\")
part_names = st.sampled_from(["files", "files", "files", "file", ""]) | any_text
file_names = st.none() | st.builds(lambda stem, suffix: stem + suffix, any_text, st.sampled_from(SUFFIXES))
part_bodies = st.binary(max_size=300) | st.sampled_from([
    b"# Title\n\nA short markdown note about pumps.\n", b"%PDF-1.4\n%%EOF\n", b"PK\x03\x04", b"\x00" * 64, b"",
])


@st.composite
def multipart_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    """(content type, body): multipart written by hand, so names may hold quotes, CR/LF and any
    unicode, parts may lack headers, and the body may be cut off or its boundary misdeclared."""
    boundary = draw(st.sampled_from(["fuzzboundary", "x", "----WebKitFormBoundary7MA4YWxkTrZu0gW"]))
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        name = draw(part_names).encode("utf-8", "surrogatepass")
        filename = draw(file_names)
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename.encode("utf-8", "surrogatepass") + b'"'
        headers = draw(st.sampled_from([[disposition], [disposition, b"Content-Type: application/octet-stream"], []]))
        out += b"--" + boundary.encode() + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
        out += draw(part_bodies) + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    if draw(st.booleans()):
        out = out[: draw(st.integers(0, len(out)))]
    declared = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}", "multipart/form-data",
                                     "multipart/form-data; boundary=other", "multipart/mixed; boundary=" + boundary,
                                     "application/json"]) | content_types)
    return declared, out


def check_upload(response: Response, index: Path) -> None:
    if response.status_code != 200:
        check_error(response)
        return
    report = response.json()
    assert set(report) == INGEST_FIELDS, report
    uploads = (index / "uploads").resolve()
    for entry in (*report["ingested"], *report["skipped"], *report["failed"]):
        assert Path(entry["path"]).parent == uploads, entry


def check_upload_folder(root: Path, index: Path) -> None:
    """Files only under INDEX/, uploads/ holds plain files only: no staging folder left over."""
    assert sorted(p for p in root.rglob("*") if index not in p.parents and p != index) == []
    leftovers = [p.name for p in (index / "uploads").iterdir() if not p.is_file() or p.name.startswith(".")]
    assert leftovers == [], leftovers


@FUZZ
@given(request=multipart_requests())
def test_any_multipart_upload_is_a_report_or_a_json_4xx(uploading: TestClient, upload_root: Path,
                                                         request: tuple[str, bytes]) -> None:
    content_type, body = request
    index = upload_root / "idx"
    check_upload(uploading.post("/v1/documents", content=body, headers={"content-type": content_type}), index)
    check_upload_folder(upload_root, index)
    assert uploading.get("/healthz").status_code == 200


@FUZZ
@given(content_type=content_types, body=raw_bodies)
def test_garbage_upload_bodies_are_4xx(uploading: TestClient, upload_root: Path, content_type: str, body: bytes) -> None:
    # None of these bodies is multipart with a file part, so none is an upload.
    check_error(uploading.post("/v1/documents", content=body, headers={"content-type": content_type}))
    check_upload_folder(upload_root, upload_root / "idx")


# --------------------------------------------------------------------------- body limits

def _chunks(data: bytes, size: int = 1 << 16) -> Iterator[bytes]:
    # A generator body goes out with Transfer-Encoding: chunked and no Content-Length, so only
    # the bytes counted as they arrive can stop it.
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask"])
def test_a_json_body_over_the_limit_is_413(searchable: TestClient, path: str, chunked: bool) -> None:
    data = json.dumps({"query": "pump " * (MAX_JSON_BODY_BYTES // 5 + 1)}).encode()
    assert len(data) > MAX_JSON_BODY_BYTES
    response = searchable.post(path, content=_chunks(data) if chunked else data, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert check_error(response) == f"request body is larger than {MAX_JSON_BODY_BYTES} bytes"


def test_a_json_body_at_the_limit_is_read(searchable: TestClient) -> None:
    prefix, suffix = b'{"query": "pump", "pad": "', b'"}'
    data = prefix + b"x" * (MAX_JSON_BODY_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(data) == MAX_JSON_BODY_BYTES
    response = searchable.post("/v1/search", content=_chunks(data), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upload_request_over_the_limit_is_413_and_writes_nothing(tmp_path: Path, chunked: bool) -> None:
    index = tmp_path / "idx"
    limit = int(0.01 * 2**20) + UPLOAD_FRAMING_BYTES
    data = b"# Big\n\n" + b"word " * (limit // 5 + 1)
    boundary = "fuzzboundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.md"\r\n\r\n'.encode()
            + data + f"\r\n--{boundary}--\r\n".encode())
    with serving(index, max_upload_mb=0.01) as client:
        response = client.post("/v1/documents", content=_chunks(body) if chunked else body,
                               headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 413, response.text
        assert check_error(response) == (
            f"request body is larger than {limit} bytes: uploads take at most 0.01 MiB per request (CITEKB_MAX_UPLOAD_MB)")
        assert client.get("/v1/documents").json() == {"documents": []}
    assert not (index / "uploads").exists() or list((index / "uploads").iterdir()) == []


# --------------------------------------------------------------------------- schemathesis

# Every operation of the app, and whether schemathesis can make schema-breaking input for it
# (it cannot for an operation that takes none, nor for a path parameter that is any string).
OPERATIONS = {
    ("GET", "/healthz"): False,
    ("POST", "/v1/search"): True,
    ("POST", "/v1/ask"): True,
    ("GET", "/v1/documents"): False,
    ("POST", "/v1/documents"): True,
    ("DELETE", "/v1/documents/{doc_id}"): False,
    ("GET", "/v1/documents/{doc_id}"): False,
    ("GET", "/v1/documents/{doc_id}/pages/{page}.png"): True,
    ("GET", "/v1/documents/{doc_id}/view"): True,
    ("GET", "/v1/models"): False,
    ("POST", "/v1/chat/completions"): True,
    ("GET", "/v1/collections"): False,
    ("PUT", "/v1/collections/{collection}"): True,
    ("DELETE", "/v1/collections/{collection}"): True,
    **{(method, "/v1/collections/{collection}" + path): True
       for method, path in (("POST", "/search"), ("POST", "/ask"), ("GET", "/documents"), ("POST", "/documents"),
                            ("DELETE", "/documents/{doc_id}"), ("GET", "/models"), ("POST", "/chat/completions"),
                            ("GET", "/documents/{doc_id}"), ("GET", "/documents/{doc_id}/pages/{page}.png"),
                            ("GET", "/documents/{doc_id}/view"))},
}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Any]:
    with serving(tmp_path_factory.mktemp("fuzz-schema") / "idx", corpus_dir) as client:
        yield schemathesis.openapi.from_asgi("/openapi.json", client.app)


def test_the_fuzzed_operations_are_all_the_apps_operations(api_schema: Any) -> None:
    found = {(op.method.upper(), op.path) for op in (result.ok() for result in api_schema.get_all_operations())}
    assert found == set(OPERATIONS)


CASES = [(m, p, mode) for (m, p), negative in OPERATIONS.items()
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if negative or mode is GenerationMode.POSITIVE]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_schemathesis_finds_nothing(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    """Schemathesis's checks (no 5xx; documented status, content type and schema; schema-breaking
    input refused), plus ours: every 4xx is an {"error": ...} body. Left out: positive_data_acceptance,
    since an unknown answer backend is a 400 by design though any string fits the schema; and for
    the multipart upload, negative_data_rejection, since a "number" in a file part is just the
    file's bytes, as valid an upload as any."""
    operation = api_schema[path][method]
    excluded = [schemathesis.checks.positive_data_acceptance]
    if path == "/v1/documents" and method == "POST":
        excluded.append(schemathesis.checks.negative_data_rejection)

    @settings(max_examples=40, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call()
        case.validate_response(response, excluded_checks=excluded)
        if response.status_code >= 400:
            assert response.status_code < 500
            body = response.json()
            assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body

    run()


def test_the_openapi_document_describes_errors_as_error_bodies(searchable: TestClient) -> None:
    spec = searchable.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
            assert "422" in operation["responses"] and "413" in operation["responses"], (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
