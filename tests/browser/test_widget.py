"""The widget on a portal page, in chromium: ask, get a streamed answer with [n] links, click one,
and see the viewer open at the cited page with the quoted text highlighted."""

from __future__ import annotations

from typing import Any

import pdfplumber
import pytest

from citekb.api.collections import Collections
from citekb.api.keys import KeyStore

from api_contract import DOCX_QUESTION, MD_QUESTION, PDF_QUESTION, UNANSWERABLE
from site_server import Site, portal_page
from tiny_docs import DOCX_APPROVAL, MARKDOWN_TEXT, PDF_PAGES

WIDGET = ".citekb-widget"  # playwright's CSS selectors reach into the widget's open shadow root

PDF_ANSWER = "Replace the intake filter every 45 days of operation."
PDF_GOLD_PAGE = next(n for n, sections in enumerate(PDF_PAGES, 1)
                     for s in sections for p in s.paragraphs if p.startswith(PDF_ANSWER))
MD_GOLD_LINE = next(n for n, line in enumerate(MARKDOWN_TEXT.splitlines(), 1) if "4411" in line)


def ask(page: Any, site: Site, question: str) -> Any:
    """Opens the portal, asks question in the widget, and returns the answer's element once
    the [n] links are in it."""
    page.goto(site.portal)
    page.fill(f"{WIDGET} input[name=q]", question)
    page.press(f"{WIDGET} input[name=q]", "Enter")
    page.wait_for_selector(f"{WIDGET} .answer a.cite")
    return page.locator(f"{WIDGET} .answer")


def test_pdf_citation_opens_the_cited_page_with_the_quote_highlighted(page: Any, site: Site, screenshot: Any) -> None:
    answer = ask(page, site, PDF_QUESTION)
    assert PDF_ANSWER in answer.inner_text()
    assert answer.locator("a.cite").first.inner_text() == "[1]"
    answer.locator("a.cite[data-n='1']").click()

    shown = page.locator(f"{WIDGET} .viewer .page")
    image = shown.locator("img")
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert shown.get_attribute("data-page") == str(PDF_GOLD_PAGE)
    assert page.locator(f"{WIDGET} .pageno").inner_text() == f"p. {PDF_GOLD_PAGE} / {len(PDF_PAGES)}"
    highlights = shown.locator(".hl")
    assert highlights.count() >= 1
    saved = screenshot(page, "widget-pdf-viewer")
    assert saved.stat().st_size > 10_000

    # The highlight sits on the quoted sentence: where pdfplumber finds it on that page, to
    # within a point or two (the boxes are drawn as percentages of the rendered page).
    with pdfplumber.open(site.corpus / "field_guide.pdf") as pdf:
        gold_page = pdf.pages[PDF_GOLD_PAGE - 1]
        match = gold_page.search(PDF_ANSWER)[0]
        width, height = float(gold_page.width), float(gold_page.height)
    img_box = image.bounding_box()
    box = highlights.first.bounding_box()
    scale = width / img_box["width"]
    drawn = ((box["x"] - img_box["x"]) * scale, (box["y"] - img_box["y"]) * scale,
             (box["x"] + box["width"] - img_box["x"]) * scale, (box["y"] + box["height"] - img_box["y"]) * scale)
    assert drawn == pytest.approx((match["x0"], match["top"], match["x1"], match["bottom"]), abs=2.0)
    assert img_box["height"] * scale == pytest.approx(height, abs=2.0)

    # Paging on shows the next page without highlights; Escape closes the viewer.
    page.click(f"{WIDGET} .viewer button.next")
    page.wait_for_selector(f"{WIDGET} .viewer .page[data-page='{PDF_GOLD_PAGE + 1}'] img")
    assert page.locator(f"{WIDGET} .viewer .hl").count() == 0
    page.keyboard.press("Escape")
    assert page.locator(f"{WIDGET} .viewer").count() == 0


def test_docx_citation_shows_the_text_with_section_and_quote_highlighted(page: Any, site: Site, screenshot: Any) -> None:
    answer = ask(page, site, DOCX_QUESTION)
    assert DOCX_APPROVAL in answer.inner_text()
    answer.locator("a.cite[data-n='1']").click()
    cited = page.locator(f"{WIDGET} .viewer .doc p.cited")
    cited.wait_for()
    assert cited.count() == 1
    assert cited.locator("mark").inner_text() == DOCX_APPROVAL
    section = [t.strip() for t in page.locator(f"{WIDGET} .viewer .doc p.in-section").all_inner_texts()]
    assert section == ["Approval", DOCX_APPROVAL]  # the heading and its paragraph, nothing of Expenses
    # The cited paragraph is on page 3: the last page break before it says so.
    page_of_cited = page.evaluate(
        """root => { const doc = root.shadowRoot.querySelector('.doc'); let page = null;
             for (const node of doc.children) { if (node.classList.contains('pagebreak')) page = node.dataset.page;
                                                 if (node.classList.contains('cited')) return page; } }""",
        page.locator(WIDGET).element_handle())
    assert page_of_cited == "3"
    screenshot(page, "widget-docx-viewer")


def test_markdown_citation_highlights_the_cited_lines(page: Any, site: Site, screenshot: Any) -> None:
    answer = ask(page, site, MD_QUESTION)
    answer.locator("a.cite[data-n='1']").click()
    page.wait_for_selector(f"{WIDGET} .viewer .lines .cited")
    cited = page.locator(f"{WIDGET} .viewer .lines .cited")
    assert [cited.nth(i).get_attribute("data-line") for i in range(cited.count())] == [str(MD_GOLD_LINE)]
    in_section = page.locator(f"{WIDGET} .viewer .lines .in-section")
    texts = in_section.all_inner_texts()
    assert any("## Incidents" in t for t in texts) and not any("Devices" in t for t in texts)
    screenshot(page, "widget-markdown-viewer")
    # "Original" opens the file as ingested (fetched with the key, shown from a blob: URL).
    with page.context.expect_page() as opened:
        page.click(f"{WIDGET} .viewer button.original")
    original = opened.value
    original.wait_for_load_state()
    assert original.url.startswith("blob:" + site.portal.rstrip("/"))
    assert original.locator("body").inner_text().strip() == (site.corpus / "security.md").read_text("utf-8").strip()


def test_sources_list_names_each_citation_with_its_page(page: Any, site: Site) -> None:
    ask(page, site, PDF_QUESTION)
    first = page.locator(f"{WIDGET} .sources li a").first
    assert first.inner_text().startswith(f"[1] field_guide.pdf p.{PDF_GOLD_PAGE}")


def test_a_bad_key_shows_the_servers_reason(page: Any, site: Site) -> None:
    site.pages["/bad-key"] = portal_page(site.api, "ckb_000000000000_" + "x" * 43)
    page.goto(site.portal + "bad-key")
    page.fill(f"{WIDGET} input[name=q]", PDF_QUESTION)
    page.press(f"{WIDGET} input[name=q]", "Enter")
    error = page.locator(f"{WIDGET} .error")
    error.wait_for()
    page.wait_for_function("e => e.textContent.length > 0", arg=error.element_handle())
    assert "invalid or revoked API key" in error.inner_text()


def test_the_widget_streams_from_chat_completions_with_the_portals_key(page: Any, site: Site) -> None:
    sent: list[Any] = []
    page.on("request", lambda request: sent.append(request) if request.method == "POST" else None)
    ask(page, site, PDF_QUESTION)
    [request] = sent
    assert request.url == site.api + "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {site.read_key}"
    body = request.post_data_json
    assert body["stream"] is True and body["messages"] == [{"role": "user", "content": PDF_QUESTION}]
    assert request.response().headers["content-type"].startswith("text/event-stream")


def test_an_unanswerable_question_gets_no_citation_links(page: Any, site: Site) -> None:
    page.goto(site.portal)
    page.fill(f"{WIDGET} input[name=q]", UNANSWERABLE)
    page.press(f"{WIDGET} input[name=q]", "Enter")
    page.wait_for_function("""root => { const b = root.shadowRoot.querySelector('button[type=submit]');
                                        const a = root.shadowRoot.querySelector('.answer');
                                        return !b.disabled && a.textContent.length > 0; }""",
                           arg=page.locator(WIDGET).element_handle())
    assert page.locator(f"{WIDGET} .answer a.cite").count() == 0
    assert page.locator(f"{WIDGET} .sources li").count() == 0
    assert page.locator(f"{WIDGET} .error").inner_text() == ""


def test_data_collection_asks_that_collection_and_views_its_documents(page: Any, site: Site) -> None:
    # Another collection beside the default one, holding only the PDF, and a key for it alone.
    collections = Collections(site.kb)
    collections.create("manuals")
    assert not collections.get("manuals").ingest([site.corpus / "field_guide.pdf"]).failed
    key = KeyStore.for_index(site.kb.settings.index).create("manuals portal", {"manuals": "read"}, ["*"]).secret
    site.pages["/manuals"] = portal_page(site.api, key, collection="manuals")
    page.goto(site.portal + "manuals")
    page.fill(f"{WIDGET} input[name=q]", PDF_QUESTION)
    page.press(f"{WIDGET} input[name=q]", "Enter")
    page.wait_for_selector(f"{WIDGET} .answer a.cite")
    page.locator(f"{WIDGET} .answer a.cite[data-n='1']").click()
    page.wait_for_selector(f"{WIDGET} .viewer .page[data-page='{PDF_GOLD_PAGE}'] .hl")
    # The same key cannot read the default collection: the widget says why.
    site.pages["/manuals-key-on-default"] = portal_page(site.api, key)
    page.goto(site.portal + "manuals-key-on-default")
    page.fill(f"{WIDGET} input[name=q]", PDF_QUESTION)
    page.press(f"{WIDGET} input[name=q]", "Enter")
    page.wait_for_function("e => e.textContent.length > 0", arg=page.locator(f"{WIDGET} .error").element_handle())
    assert "may not read collection 'default'" in page.locator(f"{WIDGET} .error").inner_text()
