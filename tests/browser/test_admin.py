"""The admin page in chromium: list documents, upload (see each file's result and error), delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from site_server import running_site


def test_admin_page_uploads_reports_errors_and_deletes(page: Any, tmp_path: Path, corpus_dir: Path, screenshot: Any) -> None:
    with running_site(tmp_path / "site", corpus_dir) as site:
        page.on("dialog", lambda dialog: dialog.accept())  # the "Delete ...?" confirmation
        page.goto(site.api + "/admin")
        page.fill("#key", site.write_key)
        page.click("#connect")
        rows = page.locator("#documents tbody tr[data-doc-id]")
        rows.nth(2).wait_for()
        assert sorted(rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())) == [
            "field_guide.pdf", "security.md", "travel_policy.docx"]

        good = tmp_path / "holidays.md"
        good.write_text("# Holidays\n\nThe office closes on 24 December.\n", "utf-8")
        bad = tmp_path / "broken.pdf"
        bad.write_bytes(b"%PDF-1.7\nthis is not really a PDF\n")
        page.set_input_files("#files", [str(good), str(bad)])
        page.fill("#groups", "hr, finance")
        page.click("#upload-button")
        page.wait_for_selector("#report:not([hidden]) tbody tr")
        results = {row.locator("td").nth(0).inner_text(): (row.locator("td").nth(1).inner_text(), row.locator("td").nth(2).inner_text())
                    for row in page.locator("#report tbody tr").all()}
        assert results["holidays.md"][0] == "ingested"
        assert results["broken.pdf"][0] == "failed" and "broken.pdf" in results["broken.pdf"][1]
        assert page.locator("#status").inner_text() == "1 ingested, 0 skipped, 1 failed."
        page.wait_for_function("() => document.querySelectorAll('#documents tbody tr[data-doc-id]').length === 4")
        screenshot(page, "admin-after-upload")

        holidays = page.locator("#documents tbody tr", has_text="holidays.md")
        assert holidays.locator("td").nth(5).inner_text() == "finance, hr"
        assert next(r for r in site.kb.documents() if r.source == "holidays.md").groups == ["finance", "hr"]
        doc_id = holidays.get_attribute("data-doc-id")
        holidays.locator("button.danger").click()
        page.wait_for_function("() => document.querySelectorAll('#documents tbody tr[data-doc-id]').length === 3")
        assert page.locator("#status").inner_text() == "Deleted holidays.md."
        assert doc_id not in {r.doc_id for r in site.kb.documents()}


def test_admin_page_with_a_read_only_key_shows_the_refusal(page: Any, tmp_path: Path, corpus_dir: Path) -> None:
    with running_site(tmp_path / "site", corpus_dir) as site:
        page.goto(site.api + "/admin")
        page.fill("#key", site.read_key)
        page.click("#connect")
        page.locator("#documents tbody tr[data-doc-id]").nth(2).wait_for()  # reading is allowed
        note = tmp_path / "note.md"
        note.write_text("# Note\n\nText.\n", "utf-8")
        page.set_input_files("#files", [str(note)])
        page.click("#upload-button")
        page.wait_for_selector("#status.fail")
        assert "may not write collection 'default'" in page.locator("#status").inner_text()
        assert len(site.kb.documents()) == 3
