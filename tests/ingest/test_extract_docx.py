from __future__ import annotations

import random
import zipfile
from pathlib import Path

import docx
import pytest
from docx.enum.section import WD_SECTION
from docx.enum.text import WD_BREAK
from docx.oxml import OxmlElement

from citekb.ingest.document import Document
from citekb.ingest.errors import ExtractionError
from citekb.ingest.extract.docx import DocxExtractor

from tiny_docs import DOCX_APPROVAL, DOCX_BOOKING, DOCX_BOOKING_2, DOCX_HOTEL, DOCX_RECEIPT, DOCX_TITLE

DOC_ID = "docx000000000001"


@pytest.fixture(scope="module")
def document(docx_path: Path) -> Document:
    return DocxExtractor().extract(docx_path, DOC_ID)


def test_blocks_pages_and_heading_paths(document: Document) -> None:
    title = (DOCX_TITLE,)
    booking, expenses, approval = (*title, "Booking"), (*title, "Expenses"), (*title, "Approval")
    assert [(b.kind, b.text, b.locator.page, b.locator.section) for b in document.blocks] == [
        ("heading", DOCX_TITLE, 1, title),
        ("heading", "Booking", 1, booking),
        ("paragraph", DOCX_BOOKING, 1, booking),
        ("paragraph", DOCX_BOOKING_2, 1, booking),
        ("heading", "Expenses", 2, expenses),
        ("paragraph", DOCX_HOTEL, 2, expenses),
        ("table", "Expense | Limit\nDinner | 45 EUR\nTaxi | 60 EUR", 2, expenses),
        ("paragraph", DOCX_RECEIPT, 2, expenses),
        ("heading", "Approval", 3, approval),
        ("paragraph", DOCX_APPROVAL, 3, approval),
    ]


def test_document_metadata_and_section_path(document: Document, docx_path: Path) -> None:
    assert (document.doc_id, document.source, document.title, document.pages) == (DOC_ID, docx_path.name, DOCX_TITLE, 3)
    hotel = next(b for b in document.blocks if b.text == DOCX_HOTEL)
    assert hotel.locator.section_path == "Travel Policy > Expenses"
    assert all(b.locator.line_start is None and b.locator.bboxes == () for b in document.blocks)
    for block in document.blocks:
        assert document.text[block.locator.char_start:block.locator.char_end] == block.text


def write(path: Path, build: object) -> Path:
    d = docx.Document()
    build(d)  # type: ignore[operator]
    d.save(str(path))
    return path


def pages_of(path: Path) -> list[tuple[str, int | None]]:
    return [(b.text, b.locator.page) for b in DocxExtractor().extract(path, "x").blocks]


def test_core_properties_title_wins_over_the_first_heading(tmp_path: Path) -> None:
    def build(d: docx.document.Document) -> None:
        d.core_properties.title = "  Official Title  "
        d.add_heading("Heading Title", level=1)
        d.add_paragraph("Body.")

    assert DocxExtractor().extract(write(tmp_path / "t.docx", build), "x").title == "Official Title"


def test_file_stem_is_the_title_without_headings(tmp_path: Path) -> None:
    document = DocxExtractor().extract(write(tmp_path / "notes_2024.docx", lambda d: d.add_paragraph("Body.")), "x")
    assert document.title == "notes_2024"
    assert [(b.kind, b.locator.section) for b in document.blocks] == [("paragraph", ())]


def test_page_break_before_and_section_breaks_start_pages(tmp_path: Path) -> None:
    def build(d: docx.document.Document) -> None:
        d.add_paragraph("one")
        d.add_paragraph("two").paragraph_format.page_break_before = True
        d.add_section(WD_SECTION.NEW_PAGE)
        d.add_paragraph("three")
        d.add_section(WD_SECTION.CONTINUOUS)
        d.add_paragraph("still three")

    assert pages_of(write(tmp_path / "p.docx", build)) == [("one", 1), ("two", 2), ("three", 3), ("still three", 3)]


def test_a_continuous_section_break_stays_on_the_page(tmp_path: Path) -> None:
    # The break's kind is stored in the sectPr of the section it opens (here the body's), not in
    # the paragraph that closes the previous section.
    def build(d: docx.document.Document) -> None:
        d.add_paragraph("one")
        d.add_section(WD_SECTION.CONTINUOUS)  # e.g. switching to two columns mid-page
        d.add_paragraph("two")

    assert pages_of(write(tmp_path / "c.docx", build)) == [("one", 1), ("two", 1)]


def test_text_after_a_break_inside_a_paragraph_belongs_to_the_page_it_starts_on(tmp_path: Path) -> None:
    def build(d: docx.document.Document) -> None:
        p = d.add_paragraph()
        p.add_run().add_break(WD_BREAK.PAGE)
        p.add_run("starts on two")
        d.add_paragraph("also two")

    assert pages_of(write(tmp_path / "p.docx", build)) == [("starts on two", 2), ("also two", 2)]


def _rendered_break(paragraph: docx.text.paragraph.Paragraph) -> None:
    """Word's lastRenderedPageBreak marker, at the start of the paragraph's first run."""
    run = paragraph.runs[0]._r
    run.insert(0 if run.rPr is None else 1, OxmlElement("w:lastRenderedPageBreak"))


def test_rendered_page_break_markers_count_once(tmp_path: Path) -> None:
    def build(d: docx.document.Document) -> None:
        d.add_paragraph("one")
        _rendered_break(d.add_paragraph("two"))  # Word's own layout broke the page here
        d.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        # Word writes the marker again right after an explicit break: the same page, not another.
        _rendered_break(d.add_paragraph("three"))

    assert pages_of(write(tmp_path / "r.docx", build)) == [("one", 1), ("two", 2), ("three", 3)]


def test_merged_table_cells_are_reported_once(tmp_path: Path) -> None:
    def build(d: docx.document.Document) -> None:
        table = d.add_table(rows=2, cols=3)
        merged = table.cell(0, 0).merge(table.cell(0, 1))
        merged.text = "Wide"
        table.cell(0, 2).text = "C"
        for i, text in enumerate(("a", "b", "c")):
            table.cell(1, i).text = text

    blocks = DocxExtractor().extract(write(tmp_path / "m.docx", build), "x").blocks
    assert [(b.kind, b.text) for b in blocks] == [("table", "Wide | C\na | b | c")]


def test_not_a_zip_raises_extraction_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.docx"
    path.write_bytes(b"this is plain text, not a zip archive")
    with pytest.raises(ExtractionError, match=r"^cannot read fake\.docx: not a DOCX file"):
        DocxExtractor().extract(path, "x")


def test_ole_container_is_reported_as_protected_or_old_doc(tmp_path: Path) -> None:
    path = tmp_path / "locked.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    with pytest.raises(ExtractionError, match=r"^cannot read locked\.docx: the document is password-protected"):
        DocxExtractor().extract(path, "x")


def test_zip_without_a_word_document_raises_extraction_error(tmp_path: Path) -> None:
    path = tmp_path / "archive.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a word document")
    with pytest.raises(ExtractionError, match=r"^cannot read archive\.docx: not a valid DOCX package"):
        DocxExtractor().extract(path, "x")


def _docx_with(tmp_path: Path, name: str, padding: int = 0, extra_parts: dict[str, bytes] | None = None) -> Path:
    """A one-paragraph DOCX; padding spaces inside word/document.xml (they compress ~1000x)."""
    plain = tmp_path / "plain.docx"
    document = docx.Document()
    document.add_paragraph("Glaze recipes are kept in the blue binder.")
    document.save(str(plain))
    path = tmp_path / name
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "word/document.xml":
                data = data.replace(b"</w:body>", b" " * padding + b"</w:body>")
            dst.writestr(item.filename, data)
        for part, data in (extra_parts or {}).items():
            dst.writestr(part, data)
    return path


def test_a_zip_bomb_is_refused_from_the_zip_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("citekb.ingest.extract.docx.MAX_UNZIPPED_BYTES", 2**20)
    path = _docx_with(tmp_path, "bomb.docx", padding=3 * 2**20)
    with pytest.raises(ExtractionError, match=r"^cannot read bomb\.docx: its 0\.0 MiB unpack to \d MiB \(word/document\.xml: 3 MiB\), "
                                              r"over 50x and 1 MiB; refused as a likely zip bomb$"):
        DocxExtractor().extract(path, "x")


def test_a_large_document_that_does_not_compress_much_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("citekb.ingest.extract.docx.MAX_UNZIPPED_BYTES", 2**20)
    photo = random.Random(7).randbytes(3 * 2**20)  # over the size limit, but only ~1x compressed
    path = _docx_with(tmp_path, "photos.docx", extra_parts={"word/media/photo.bin": photo})
    assert [b.text for b in DocxExtractor().extract(path, "x").blocks] == ["Glaze recipes are kept in the blue binder."]


def test_a_package_with_too_many_parts_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("citekb.ingest.extract.docx.MAX_PARTS", 30)
    path = _docx_with(tmp_path, "parts.docx", extra_parts={f"junk/{i}.xml": b"<a/>" for i in range(40)})
    with pytest.raises(ExtractionError, match=r"^cannot read parts\.docx: the package has \d+ parts \(at most 30\)"):
        DocxExtractor().extract(path, "x")
