"""Scanned PDF pages: read by OCR into paragraphs with their page and boxes in PDF points;
with OCR off (or not installed) they give no text and say so."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from citekb.ingest.config import IngestConfig
from citekb.ingest.errors import ExtractionError
from citekb.ingest.extract import ocr
from citekb.ingest.extract.pdf import PdfExtractor
from citekb.ingest.pipeline import default_extractors, extract

from tiny_docs import DEJAVU

# Two paragraphs, a blank line apart; "" is the blank line.
SCANNED_LINES = ("Quartz lanterns need eleven", "minutes of darkness before", "calibration begins.", "",
                 "Record the reading twice", "in the field ledger.")
PARAGRAPHS = (" ".join(SCANNED_LINES[:3]), " ".join(SCANNED_LINES[4:]))
TYPED = "The typed page comes first and has a text layer."
PAGE_MM = (120.0, 100.0)  # a small page keeps the rendering, and so the OCR, quick
IMAGE_AT_MM = (10.0, 10.0, 100.0)  # x, y, width of the scan on its page


def scan_image() -> Image.Image:
    """The scanned lines, black on white, as a 150 dpi scanner would give them."""
    font = ImageFont.truetype(str(DEJAVU), 36)
    image = Image.new("L", (1100, 60 * len(SCANNED_LINES) + 40), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(SCANNED_LINES):
        draw.text((20, 20 + 60 * i), line, font=font, fill=0)
    return image


def write_pdf(path: Path, typed_page: bool) -> Path:
    pdf = FPDF(unit="mm", format=PAGE_MM)
    pdf.set_auto_page_break(False)
    if typed_page:
        pdf.add_font("body", "", str(DEJAVU))
        pdf.add_page()
        pdf.set_font("body", size=9)
        pdf.multi_cell(0, 5, TYPED)
    pdf.add_page()
    x, y, w = IMAGE_AT_MM
    pdf.image(scan_image(), x=x, y=y, w=w)
    pdf.output(str(path))
    return path


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_a_scanned_page_is_read_by_ocr_with_its_page_number_and_boxes(tmp_path: Path) -> None:
    document = PdfExtractor().extract(write_pdf(tmp_path / "mixed.pdf", typed_page=True), "scan1")
    assert document.pages == 2
    typed = [b for b in document.blocks if b.locator.page == 1]
    assert [b.text for b in typed] == [TYPED]
    scanned = [b for b in document.blocks if b.locator.page == 2]
    assert [b.kind for b in scanned] == ["paragraph", "paragraph"]  # wrapped lines joined, split at the blank line
    assert [words(b.text) for b in scanned] == [words(p) for p in PARAGRAPHS]
    boxes = [box for b in scanned for box in b.locator.bboxes]
    assert len(boxes) == len([line for line in SCANNED_LINES if line]) and all(box.page == 2 for box in boxes)
    # Boxes are in PDF points on the page, inside where the image was placed, top to bottom.
    pt = 72 / 25.4
    x, y, w = IMAGE_AT_MM
    h = w * scan_image().height / scan_image().width
    for box in boxes:
        assert x * pt <= box.x0 < box.x1 <= (x + w) * pt
        assert y * pt <= box.top < box.bottom <= (y + h) * pt
    assert [box.top for box in boxes] == sorted(box.top for box in boxes)


def test_with_ocr_off_a_scan_has_no_extractable_text(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "scan.pdf", typed_page=False)
    with pytest.raises(ExtractionError, match=r"^cannot index scan\.pdf: no extractable text"):
        extract(path, "scan2", IngestConfig(ocr=False), default_extractors())
    assert words(extract(path, "scan2", IngestConfig(), default_extractors()).text) == words(" ".join(PARAGRAPHS))


def test_without_rapidocr_a_scan_is_an_error_that_says_how_to_get_ocr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pdf(tmp_path / "scan.pdf", typed_page=False)
    ocr._engine.cache_clear()  # an engine built by an earlier test would hide the missing module
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # makes `import rapidocr` fail
    try:
        with pytest.raises(ExtractionError, match=r"^cannot read scan\.pdf: page 1 is a scanned image and OCR is unavailable .*install rapidocr"):
            PdfExtractor().extract(path, "scan3")
    finally:
        ocr._engine.cache_clear()


def test_a_page_without_text_or_pictures_is_not_sent_to_ocr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ocr(image: Image.Image) -> list[ocr.OcrLine]:
        raise AssertionError("OCR ran on a page with no picture")

    monkeypatch.setattr("citekb.ingest.extract.pdf.read_lines", no_ocr)
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 50, 50)
    path = tmp_path / "drawing.pdf"
    pdf.output(str(path))
    assert PdfExtractor().extract(path, "drawing").blocks == ()
