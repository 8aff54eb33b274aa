"""The viewer's routes without a browser: the original file, PDF page images, and the view of a
citation (page, highlight boxes, DOCX blocks, Markdown lines), each only for keys that may read
the document; plus the widget's static files and the admin page."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pdfplumber
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from citekb.api.http.app import create_app
from citekb.api.http.routes.viewer import quote_boxes
from citekb.api.kb import KnowledgeBase
from citekb.api.keys import KeyStore
from citekb.ingest.document import BBox

from api_contract import DOCX_QUESTION, MD_QUESTION, PDF_QUESTION, make_kb
from tiny_docs import DOCX_APPROVAL, PDF_ZH_PARAGRAPH

PDF_ANSWER = "Replace the intake filter every 45 days of operation."


@pytest.fixture
def corpus(tmp_path: Path, corpus_dir: Path) -> Path:
    return Path(shutil.copytree(corpus_dir, tmp_path / "corpus"))


@pytest.fixture
def kb(tmp_path: Path, corpus: Path) -> KnowledgeBase:
    kb = make_kb(tmp_path / "idx", rate_limit_per_min=0)
    assert not kb.ingest([corpus]).failed
    return kb


@pytest.fixture
def client(kb: KnowledgeBase) -> Iterator[TestClient]:
    with TestClient(create_app(kb), raise_server_exceptions=False) as test_client:
        yield test_client


def cite(kb: KnowledgeBase, question: str) -> dict[str, Any]:
    """The first citation of question's answer, as the API sends it."""
    citation = kb.ask(question).citations[0]
    return {"doc_id": citation.locator.doc_id, "chunk_id": citation.chunk_id, "text": citation.quote,
            "page": citation.locator.page}


def view(client: TestClient, citation: dict[str, Any], prefix: str = "/v1", **headers: str) -> Any:
    return client.get(f"{prefix}/documents/{citation['doc_id']}/view",
                      params={"chunk_id": citation["chunk_id"], "quote": citation["text"]}, headers=headers)


def test_pdf_view_highlights_the_quoted_sentence_on_its_page(client: TestClient, kb: KnowledgeBase, corpus: Path) -> None:
    citation = cite(kb, PDF_QUESTION)
    response = view(client, citation)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["format"], body["page"], body["exact"], body["quote"]) == ("pdf", 2, True, PDF_ANSWER)
    with pdfplumber.open(corpus / "field_guide.pdf") as pdf:
        match = pdf.pages[1].search(PDF_ANSWER)[0]
        width, height = float(pdf.pages[1].width), float(pdf.pages[1].height)
    [box] = body["boxes"]  # the sentence fits on one line of the page
    assert box["page"] == 2
    assert (box["x0"], box["top"], box["x1"], box["bottom"]) == pytest.approx(
        (match["x0"], match["top"], match["x1"], match["bottom"]), abs=0.2)
    assert body["page_sizes"] == [{"page": 2, "width": pytest.approx(width), "height": pytest.approx(height)}]


def test_pdf_view_of_a_quote_not_on_the_page_highlights_the_cited_block(client: TestClient, kb: KnowledgeBase) -> None:
    citation = cite(kb, PDF_QUESTION) | {"text": "A sentence the document never says."}
    body = view(client, citation).json()
    assert body["exact"] is False and body["quote"] == ""
    chunk = next(c for c in kb.snapshot().chunks if c.chunk_id == citation["chunk_id"])
    assert [(b["page"], b["x0"], b["top"], b["x1"], b["bottom"]) for b in body["boxes"]] == [
        (b.page, b.x0, b.top, b.x1, b.bottom) for b in chunk.locator.bboxes]


def test_quote_boxes_span_wrapped_lines_and_chinese(pdf_path: Path) -> None:
    with pdfplumber.open(pdf_path) as pdf:
        page = pdf.pages[2]
        whole = [(0.0, 0.0, float(page.width), float(page.height))]
        region = [BBox(3, *box) for box in whole]
        # The Chinese paragraph wraps over lines: one box per line, together covering it all.
        boxes = quote_boxes(page, 3, PDF_ZH_PARAGRAPH, region)
        assert len(boxes) >= 2 and all(b.page == 3 for b in boxes)
        assert [b.top for b in boxes] == sorted(b.top for b in boxes)
        # A sentence outside the region is not found, even though it is on the page.
        assert quote_boxes(page, 3, PDF_ZH_PARAGRAPH, [BBox(3, 0, 0, 10, 10)]) == []
        assert quote_boxes(page, 3, "", region) == []
    with pdfplumber.open(pdf_path) as pdf:
        page = pdf.pages[1]
        region = [BBox(2, 0.0, 0.0, float(page.width), float(page.height))]
        # A table row is quoted with its cells joined by " | ", which the page does not print.
        row = quote_boxes(page, 2, "Replace the intake filter | every 45 days", region)
        assert row == quote_boxes(page, 2, "Replace the intake filter every 45 days", region) != []


def test_docx_view_marks_the_quote_inside_its_section(client: TestClient, kb: KnowledgeBase) -> None:
    body = view(client, cite(kb, DOCX_QUESTION)).json()
    assert (body["format"], body["page"], body["exact"]) == ("docx", 3, True)
    cited = [b for b in body["blocks"] if b["cited"]]
    assert [(b["text"], b["page"]) for b in cited] == [(DOCX_APPROVAL, 3)]
    start, end = cited[0]["mark"]
    assert cited[0]["text"][start:end] == DOCX_APPROVAL
    assert [b["text"] for b in body["blocks"] if b["in_section"]] == ["Approval", DOCX_APPROVAL]
    assert body["lines"] == [] and body["boxes"] == []


def test_markdown_view_marks_the_cited_lines(client: TestClient, kb: KnowledgeBase, corpus: Path) -> None:
    body = view(client, cite(kb, MD_QUESTION)).json()
    assert body["format"] == "markdown"
    source = (corpus / "security.md").read_text("utf-8").splitlines()
    assert [line["text"] for line in body["lines"]] == source
    assert [line["n"] for line in body["lines"] if line["cited"]] == [body["line_start"]]
    assert "4411" in source[body["line_start"] - 1]
    section = [line["text"] for line in body["lines"] if line["in_section"]]
    assert section[0] == "## Incidents" and section[-1].endswith("4411.")


def test_original_file_and_page_images(client: TestClient, kb: KnowledgeBase, corpus: Path) -> None:
    pdf = cite(kb, PDF_QUESTION)
    response = client.get(f"/v1/documents/{pdf['doc_id']}")
    assert response.status_code == 200
    assert response.content == (corpus / "field_guide.pdf").read_bytes()
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="field_guide.pdf"' in response.headers["content-disposition"]

    image = client.get(f"/v1/documents/{pdf['doc_id']}/pages/2.png", params={"dpi": 72})
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(image.content)) as png:
        assert png.size == pytest.approx((595, 842), abs=1)  # A4 at 72 dpi: one pixel a point

    assert client.get(f"/v1/documents/{pdf['doc_id']}/pages/4.png").status_code == 404
    assert client.get(f"/v1/documents/{pdf['doc_id']}/pages/1.png", params={"dpi": 5000}).status_code == 422
    docx = cite(kb, DOCX_QUESTION)
    refused = client.get(f"/v1/documents/{docx['doc_id']}/pages/1.png")
    assert refused.status_code == 400 and "not a PDF" in refused.json()["error"]


def test_unknown_documents_and_chunks_are_404(client: TestClient, kb: KnowledgeBase) -> None:
    pdf, docx = cite(kb, PDF_QUESTION), cite(kb, DOCX_QUESTION)
    assert client.get("/v1/documents/0000000000000000").status_code == 404
    assert view(client, pdf | {"doc_id": "0000000000000000"}).status_code == 404
    # A chunk of another document, asked for under this one's id, is not there.
    crossed = view(client, pdf | {"doc_id": docx["doc_id"]})
    assert crossed.status_code == 404 and "no chunk" in crossed.json()["error"]


@pytest.mark.parametrize("change", ["deleted", "edited"])
def test_a_file_gone_or_changed_since_ingest_is_410(client: TestClient, kb: KnowledgeBase, corpus: Path, change: str) -> None:
    citation = cite(kb, MD_QUESTION)
    path = corpus / "security.md"
    if change == "deleted":
        path.unlink()
    else:
        path.write_text(path.read_text("utf-8") + "\nA new line.\n", "utf-8")
    for response in (client.get(f"/v1/documents/{citation['doc_id']}"), view(client, citation)):
        assert response.status_code == 410
        message = response.json()["error"]
        assert message.startswith("security.md: ") and ("no longer on the server" if change == "deleted" else "changed") in message
        assert str(corpus) not in message  # the server's paths are not the caller's business


def test_keys_see_only_documents_of_their_groups_and_collections(tmp_path: Path, corpus: Path) -> None:
    kb = make_kb(tmp_path / "idx", rate_limit_per_min=0)
    secret = corpus / "secret"
    secret.mkdir()
    (corpus / "security.md").rename(secret / "security.md")
    assert not kb.ingest([corpus / "field_guide.pdf", corpus / "travel_policy.docx"]).failed
    assert not kb.ingest([secret], groups=["security"]).failed
    citations = {q: cite(kb, q) for q in (PDF_QUESTION, MD_QUESTION)}
    keys = KeyStore.for_index(kb.settings.index)
    staff = keys.create("staff", {"default": "read"}, []).secret
    security = keys.create("security team", {"default": "read"}, ["security"]).secret
    other = keys.create("other collection", {"hr": "read"}, ["*"]).secret
    with TestClient(create_app(kb), raise_server_exceptions=False) as client:
        def statuses(key: str, citation: dict[str, Any]) -> list[int]:
            auth = {"Authorization": f"Bearer {key}"}
            doc = f"/v1/documents/{citation['doc_id']}"
            return [client.get(doc, headers=auth).status_code, view(client, citation, **auth).status_code,
                    client.get(f"{doc}/pages/1.png", headers=auth).status_code]

        assert statuses(staff, citations[PDF_QUESTION]) == [200, 200, 200]
        assert statuses(staff, citations[MD_QUESTION]) == [404, 404, 404]  # as if it did not exist
        assert statuses(security, citations[MD_QUESTION]) == [200, 200, 400]  # Markdown has no page images
        assert statuses(other, citations[PDF_QUESTION]) == [403, 403, 403]
        assert client.get(f"/v1/documents/{citations[PDF_QUESTION]['doc_id']}").status_code == 401  # no key


def test_collections_serve_their_own_documents(client: TestClient, kb: KnowledgeBase, tmp_path: Path, corpus: Path) -> None:
    assert client.put("/v1/collections/manuals").status_code == 201
    manuals = client.app.state.server.collections.get("manuals")  # type: ignore[attr-defined]
    assert not manuals.ingest([corpus / "field_guide.pdf"]).failed
    citation = cite(manuals, PDF_QUESTION)
    assert view(client, citation, prefix="/v1/collections/manuals").json()["page"] == 2
    docx = cite(kb, DOCX_QUESTION)
    assert view(client, docx, prefix="/v1/collections/manuals").status_code == 404  # the default's, not this one's


def test_widget_files_and_admin_page_are_served(client: TestClient) -> None:
    script = client.get("/widget/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "attachShadow" in script.text
    assert client.get("/widget/admin.js").status_code == 200
    assert client.get("/widget/../app.py").status_code == 404
    assert client.get("/widget/nothing.js").status_code == 404
    admin = client.get("/admin")
    assert admin.status_code == 200 and admin.headers["content-type"].startswith("text/html")
    assert 'src="widget/admin.js"' in admin.text
