"""The tiny documents the tests read, written on the fly: their text, and the page, heading
and line each part is known to sit on, so tests can compare extraction with the source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


# --------------------------------------------------------------------------- PDF

PDF_TITLE = "Acme Pump Field Guide"
PDF_FOOTER = "- {n} -"


@dataclass(frozen=True)
class PdfSection:
    heading: str
    paragraphs: tuple[str, ...]


# One tuple of sections per printed page; add_page() is called explicitly for each, so the page
# every paragraph is printed on is known without reading the PDF back.
PDF_PAGES: tuple[tuple[PdfSection, ...], ...] = (
    (
        PdfSection("1. Storage", (
            "Store the pump in a dry room between 5 and 30 degrees Celsius. Keep the original carton "
            "for transport, because the foam inserts hold the impeller in place and prevent damage "
            "to the shaft seal during shipping. Never stack more than three cartons on top of each "
            "other, and keep them away from direct sunlight and from heaters.",
            "Drain all water from the housing before storage longer than two weeks. Water left in "
            "the volute freezes in winter and cracks the cast iron, which the warranty does not "
            "cover. Open the drain plug at the bottom of the housing and tilt the pump until no "
            "more water runs out.",
        )),
    ),
    (
        PdfSection("2. Maintenance", (
            "Replace the intake filter every 45 days of operation. A clogged filter lowers the flow "
            "rate and makes the motor run hot, which shortens the life of the windings. Spare "
            "filters come in packs of six and can be ordered from any Acme service centre.",
            "Grease the bearings with lithium grease once a year. Use the grease nipple on the motor "
            "side and stop as soon as fresh grease appears at the seal, because too much grease "
            "raises the bearing temperature just as much as too little.",
        )),
        PdfSection("3. Warranty", (
            "The warranty covers manufacturing defects for 24 months from the date of purchase. "
            "Keep the receipt: without it the warranty starts on the date of manufacture printed "
            "on the rating plate, which can be several months earlier.",
        )),
    ),
    (
        PdfSection("4. Disposal", (
            "Return a worn out pump to any Acme service centre, which recycles the copper windings "
            "and the cast iron housing. Do not put the pump in household waste: the capacitor and "
            "the cable contain materials that must be collected separately.",
        )),
    ),
)
# Printed last, on page 3, with the CJK font; long enough to wrap, so the lines must be joined
# without a space.
PDF_ZH_PARAGRAPH = (
    "本泵的最大扬程为三十二米，请勿在没有水的情况下空转运行，"
    "否则机械密封会在几分钟内因过热而损坏。"
    "长期停用时请排空泵体内的积水并存放在干燥通风的地方。"
)


def write_pdf(path: Path) -> None:
    from fpdf import FPDF

    class _Paged(FPDF):
        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("body", size=9)
            self.cell(0, 10, PDF_FOOTER.format(n=self.page_no()), align="C")

    pdf = _Paged(format="A4")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_font("body", "", str(DEJAVU))
    pdf.add_font("zh", "", str(WQY))
    for number, sections in enumerate(PDF_PAGES, 1):
        pdf.add_page()
        if number == 1:
            pdf.set_font("body", size=18)
            pdf.multi_cell(0, 9, PDF_TITLE, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(6)
        for section in sections:
            pdf.set_font("body", size=14)
            pdf.multi_cell(0, 7, section.heading, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
            pdf.set_font("body", size=11)
            for paragraph in section.paragraphs:
                pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
            pdf.ln(3)
    pdf.set_font("zh", size=11)
    pdf.multi_cell(0, 6, PDF_ZH_PARAGRAPH, new_x="LMARGIN", new_y="NEXT")
    assert pdf.page_no() == len(PDF_PAGES), "fixture content overflowed a page"
    pdf.output(str(path))


# --------------------------------------------------------------------------- DOCX

# Page 1: title (Heading 1), "Booking" (Heading 2) and two paragraphs; an empty paragraph holding
# a page break; page 2: "Expenses", a paragraph, a table, and a paragraph whose text is followed
# by a page break in the same paragraph; page 3: "Approval" and a paragraph.
DOCX_TITLE = "Travel Policy"
DOCX_BOOKING = "Book flights through the Globetrek portal at least 14 days before departure."
DOCX_BOOKING_2 = "Economy class is the default for flights shorter than six hours."
DOCX_HOTEL = "Hotel rooms are capped at 180 euros per night in capital cities."
DOCX_TABLE = (("Expense", "Limit"), ("Dinner", "45 EUR"), ("Taxi", "60 EUR"))
DOCX_RECEIPT = "Keep every receipt."
DOCX_APPROVAL = "Trips outside Europe need approval from a director before booking."


def write_docx(path: Path) -> None:
    import docx
    from docx.enum.text import WD_BREAK

    document = docx.Document()
    document.add_heading(DOCX_TITLE, level=1)
    document.add_heading("Booking", level=2)
    document.add_paragraph(DOCX_BOOKING)
    document.add_paragraph(DOCX_BOOKING_2)
    document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)  # page 2 starts
    document.add_heading("Expenses", level=2)
    document.add_paragraph(DOCX_HOTEL)
    table = document.add_table(rows=0, cols=2)
    for row in DOCX_TABLE:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text
    # A page break inside a paragraph after its text: the paragraph stays on page 2.
    tail = document.add_paragraph(DOCX_RECEIPT)
    tail.add_run().add_break(WD_BREAK.PAGE)  # page 3 starts
    document.add_heading("Approval", level=2)
    document.add_paragraph(DOCX_APPROVAL)
    document.save(str(path))


# --------------------------------------------------------------------------- Markdown

# Line numbers are part of the tests' expectations: edit them together.
MARKDOWN_TEXT = """\
# Security Policy

Passwords must be at least
sixteen characters long.

## Devices

Laptops must use full disk encryption.

| Device | Lock after |
|--------|------------|
| Laptop | 5 minutes |
| Phone | 1 minute |

- Report a lost device within one hour.

## Incidents

Call the security desk on extension 4411.
"""
