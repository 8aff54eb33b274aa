from __future__ import annotations

from pathlib import Path

import pytest

from citekb.ingest.document import Document
from citekb.ingest.errors import ExtractionError
from citekb.ingest.extract.pdf import PdfExtractor

from tiny_docs import DEJAVU, PDF_PAGES, PDF_TITLE, PDF_ZH_PARAGRAPH

DOC_ID = "pdf0000000000001"


@pytest.fixture(scope="module")
def document(pdf_path: Path) -> Document:
    return PdfExtractor().extract(pdf_path, DOC_ID)


def expected_paragraphs() -> list[tuple[str, int, tuple[str, ...]]]:
    """(text, page printed on, heading path) of every body paragraph, from the fixture's source."""
    out = [
        (text, page, (PDF_TITLE, section.heading))
        for page, sections in enumerate(PDF_PAGES, 1)
        for section in sections
        for text in section.paragraphs
    ]
    out.append((PDF_ZH_PARAGRAPH, len(PDF_PAGES), (PDF_TITLE, PDF_PAGES[-1][-1].heading)))
    return out


def test_document_metadata(document: Document, pdf_path: Path) -> None:
    assert document.doc_id == DOC_ID
    assert document.source == pdf_path.name
    assert document.pages == 3
    assert document.title == PDF_TITLE  # no metadata title: the first heading
    assert document.warnings == ()


def test_paragraphs_have_the_page_they_are_printed_on_and_their_heading_path(document: Document) -> None:
    paragraphs = [(b.text, b.locator.page, b.locator.section) for b in document.blocks if b.kind == "paragraph"]
    assert paragraphs == expected_paragraphs()


def test_headings_open_section_paths(document: Document) -> None:
    headings = [(b.text, b.locator.page, b.locator.section) for b in document.blocks if b.kind == "heading"]
    assert headings == [
        (PDF_TITLE, 1, (PDF_TITLE,)),
        ("1. Storage", 1, (PDF_TITLE, "1. Storage")),
        ("2. Maintenance", 2, (PDF_TITLE, "2. Maintenance")),
        ("3. Warranty", 2, (PDF_TITLE, "3. Warranty")),
        ("4. Disposal", 3, (PDF_TITLE, "4. Disposal")),
    ]


def test_running_footers_are_dropped(document: Document) -> None:
    texts = [b.text for b in document.blocks]
    assert not any(f"- {n} -" in text for text in texts for n in (1, 2, 3))


def test_wrapped_chinese_lines_join_without_a_space(document: Document) -> None:
    assert document.blocks[-1].text == PDF_ZH_PARAGRAPH
    assert len(document.blocks[-1].locator.bboxes) == 2  # it wraps onto a second line


def test_page_locators_boxes_and_char_offsets(document: Document) -> None:
    for block in document.blocks:
        loc = block.locator
        assert loc.page == loc.page_end
        assert loc.line_start is None and loc.line_end is None
        assert loc.bboxes and all(box.page == loc.page for box in loc.bboxes)
        assert all(0 <= box.x0 < box.x1 and 0 <= box.top < box.bottom <= 842 for box in loc.bboxes)  # A4: 842 pt
        assert document.text[loc.char_start:loc.char_end] == block.text


def test_a_paragraph_running_onto_the_next_page_is_split_by_page(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_font("body", "", str(DEJAVU))
    pdf.add_page()
    pdf.set_font("body", size=11)
    pdf.set_y(250)  # a few lines before the bottom margin
    words = [f"w{i}" for i in range(300)]
    pdf.multi_cell(0, 6, " ".join(words), new_x="LMARGIN", new_y="NEXT")
    assert pdf.page_no() == 2
    path = tmp_path / "flow.pdf"
    pdf.output(str(path))

    blocks = PdfExtractor().extract(path, "flow").blocks
    assert [b.locator.page for b in blocks] == [1, 2]
    assert " ".join(b.text for b in blocks).split() == words
    assert blocks[0].text.split()[0] == "w0" and blocks[1].text.split()[-1] == "w299"


def test_image_only_pdf_warns_about_missing_text(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 50, 50)
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    document = PdfExtractor().extract(path, "scan")
    assert document.blocks == ()
    assert document.pages == 1
    assert document.warnings == ("scan.pdf: no extractable text (scanned or image-only pages?)",)


def test_encrypted_pdf_raises_extraction_error_naming_the_file(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner-secret", user_password="user-secret")
    pdf.add_font("body", "", str(DEJAVU))
    pdf.add_page()
    pdf.set_font("body", size=11)
    pdf.cell(0, 10, "Secret text")
    path = tmp_path / "locked.pdf"
    pdf.output(str(path))
    with pytest.raises(ExtractionError, match=r"locked\.pdf.*encrypted"):
        PdfExtractor().extract(path, "locked")


@pytest.mark.parametrize("data", [b"%PDF-1.4\nthis is not really a pdf\n", b"\x00\x01garbage bytes" * 50])
def test_corrupt_pdf_raises_extraction_error_naming_the_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    with pytest.raises(ExtractionError, match=r"^cannot read broken\.pdf: "):
        PdfExtractor().extract(path, "broken")


def test_the_character_budget_is_checked_before_a_page_is_laid_out(pdf_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_layout(page: object, number: int) -> list[object]:
        raise AssertionError(f"page {number} was laid out although its characters are over the budget")

    monkeypatch.setattr("citekb.ingest.extract.pdf._page_lines", no_layout)
    with pytest.raises(ExtractionError, match=r"^cannot index field_guide\.pdf: more than 50 characters of text \(the per-file limit\)$"):
        PdfExtractor().extract(pdf_path, "x", max_chars=50)
