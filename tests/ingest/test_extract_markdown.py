from __future__ import annotations

from pathlib import Path

import pytest

from citekb.ingest.document import Document
from citekb.ingest.extract.markdown import MarkdownExtractor

from tiny_docs import MARKDOWN_TEXT

DOC_ID = "md00000000000001"


@pytest.fixture(scope="module")
def document(markdown_path: Path) -> Document:
    return MarkdownExtractor().extract(markdown_path, DOC_ID)


def test_blocks_with_line_ranges_and_heading_paths(document: Document) -> None:
    top, devices, incidents = ("Security Policy",), ("Security Policy", "Devices"), ("Security Policy", "Incidents")
    assert [(b.kind, b.text, b.locator.line_start, b.locator.line_end, b.locator.section) for b in document.blocks] == [
        ("heading", "Security Policy", 1, 1, top),
        ("paragraph", "Passwords must be at least sixteen characters long.", 3, 4, top),
        ("heading", "Devices", 6, 6, devices),
        ("paragraph", "Laptops must use full disk encryption.", 8, 8, devices),
        ("table", "Device | Lock after\nLaptop | 5 minutes\nPhone | 1 minute", 10, 13, devices),
        ("paragraph", "Report a lost device within one hour.", 15, 15, devices),
        ("heading", "Incidents", 17, 17, incidents),
        ("paragraph", "Call the security desk on extension 4411.", 19, 19, incidents),
    ]


def test_line_ranges_point_at_the_source_lines(document: Document) -> None:
    lines = MARKDOWN_TEXT.splitlines()
    for block in document.blocks:
        source = " ".join(lines[block.locator.line_start - 1 : block.locator.line_end])
        first_word = block.text.split()[0]
        assert first_word in source, (block.text, source)
        assert lines[block.locator.line_end - 1].strip() != ""  # ranges end on content, not on blank lines


def test_document_metadata(document: Document, markdown_path: Path) -> None:
    assert (document.doc_id, document.source, document.title, document.pages) == (
        DOC_ID, markdown_path.name, "Security Policy", None,
    )
    assert document.warnings == ()
    assert all(b.locator.page is None and b.locator.page_end is None for b in document.blocks)
    for block in document.blocks:
        assert document.text[block.locator.char_start:block.locator.char_end] == block.text


def extract(tmp_path: Path, text: str | bytes, name: str = "doc.md") -> Document:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return MarkdownExtractor().extract(path, "x")


def test_markup_is_dropped_and_code_is_kept(tmp_path: Path) -> None:
    text = "Intro with **bold**, `code` and a [link](http://x.example).\n\n```python\nprint(1)\n```\n"
    blocks = extract(tmp_path, text).blocks
    assert [(b.text, b.locator.line_start, b.locator.line_end) for b in blocks] == [
        ("Intro with bold, code and a link.", 1, 1),
        ("print(1)", 3, 5),
    ]


def test_deeper_heading_levels_and_going_back_up(tmp_path: Path) -> None:
    text = "# A\n\n## B\n\n### C\n\nunder c\n\n## D\n\nunder d\n"
    blocks = extract(tmp_path, text).blocks
    assert [(b.text, b.locator.section) for b in blocks if b.kind == "paragraph"] == [
        ("under c", ("A", "B", "C")),
        ("under d", ("A", "D")),
    ]


def test_title_falls_back_to_file_stem_without_h1(tmp_path: Path) -> None:
    document = extract(tmp_path, "## Only a subheading\n\ntext\n", name="notes.md")
    assert document.title == "notes"


def test_bom_and_crlf_line_endings(tmp_path: Path) -> None:
    document = extract(tmp_path, "\ufeff# Title\r\n\r\nLine one\r\nline two\r\n")
    assert [(b.text, b.locator.line_start, b.locator.line_end) for b in document.blocks] == [
        ("Title", 1, 1),
        ("Line one line two", 3, 4),
    ]


def test_invalid_utf8_keeps_the_good_text_and_warns(tmp_path: Path) -> None:
    document = extract(tmp_path, b"# T\n\ngood \xff text\n", name="bad.md")  # 0xff is byte 10
    assert [b.text for b in document.blocks] == ["T", "good \ufffd text"]
    assert document.warnings == ("bad.md: invalid UTF-8 at byte 10; bad bytes replaced",)


def test_yaml_front_matter_is_skipped_its_title_kept_and_line_numbers_stay_true(tmp_path: Path) -> None:
    source = "---\ntitle: \"Kiln Manual\"\ntags: [a, b]\n---\n\n# Firing\n\nRamp slowly.\n"
    document = extract(tmp_path, source)
    assert document.title == "Kiln Manual"
    assert [(b.kind, b.text, b.locator.line_start, b.locator.line_end, b.locator.section) for b in document.blocks] == [
        ("heading", "Firing", 6, 6, ("Firing",)),
        ("paragraph", "Ramp slowly.", 8, 8, ("Firing",)),
    ]


def test_front_matter_with_crlf_and_a_dots_close(tmp_path: Path) -> None:
    document = extract(tmp_path, "---\r\nauthor: x\r\n...\r\nBody text.\r\n")
    assert [(b.text, b.locator.line_start) for b in document.blocks] == [("Body text.", 4)]


def test_a_leading_rule_followed_by_a_blank_line_is_not_front_matter(tmp_path: Path) -> None:
    document = extract(tmp_path, "---\n\nFirst paragraph.\n\n---\n\nSecond.\n")
    assert [(b.text, b.locator.line_start) for b in document.blocks] == [("First paragraph.", 3), ("Second.", 7)]
