from __future__ import annotations

from pathlib import Path

import pytest

from citekb.ingest.chunking import chunk, count_tokens
from citekb.ingest.config import ChunkingConfig, IngestConfig
from citekb.ingest.document import BBox, Chunk, Document
from citekb.ingest.errors import ConfigError
from citekb.ingest.extract.base import DocumentBuilder
from citekb.ingest.extract.markdown import MarkdownExtractor
from citekb.ingest.extract.pdf import PdfExtractor

BIG = ChunkingConfig(target_tokens=5000, overlap_tokens=0, max_block_tokens=5000)  # sections alone cut


def sentence(i: int) -> str:
    """Ten tokens each, by count_tokens."""
    return f"Sentence number {i} talks about pumps and filters today."


def test_sentence_helper_has_ten_tokens() -> None:
    assert count_tokens(sentence(3)) == 10


def test_count_tokens_counts_words_cjk_characters_and_symbols() -> None:
    assert count_tokens("Hello, world 42!") == 5  # Hello , world 42 !
    assert count_tokens("年假 15 天。") == 5  # 年 假 15 天 。
    assert count_tokens("  \n ") == 0


def two_section_document() -> Document:
    b = DocumentBuilder(doc_id="doc0000000000001", source="guide.pdf")
    b.add("Guide", kind="heading", page=1, section=("Guide",))
    b.add("Storage", kind="heading", page=1, section=("Guide", "Storage"))
    b.add("Keep the pump dry.", page=1, section=("Guide", "Storage"), bboxes=[BBox(1, 10, 10, 100, 20)])
    b.add("Drain the housing before winter.", page=2, section=("Guide", "Storage"), bboxes=[BBox(2, 10, 10, 100, 20)])
    b.add("Maintenance", kind="heading", page=2, section=("Guide", "Maintenance"))
    b.add("Replace the filter every 45 days.", page=2, section=("Guide", "Maintenance"))
    b.add("Grease the bearings yearly.", page=3, section=("Guide", "Maintenance"))
    return b.build(pages=3, fallback_title="guide")


def test_chunks_never_cross_a_section_change_and_title_only_run_is_dropped() -> None:
    chunks = chunk(two_section_document(), BIG)
    assert [c.locator.section for c in chunks] == [("Guide", "Storage"), ("Guide", "Maintenance")]
    assert [c.chunk_id for c in chunks] == ["doc0000000000001:0", "doc0000000000001:1"]
    assert "Keep the pump dry." in chunks[0].text and "Drain the housing before winter." in chunks[0].text
    assert "filter" not in chunks[0].text
    assert "Replace the filter every 45 days." in chunks[1].text and "Grease the bearings yearly." in chunks[1].text
    assert "pump" not in chunks[1].text


def test_section_change_without_heading_also_starts_a_chunk() -> None:
    b = DocumentBuilder(doc_id="d", source="x.docx")
    b.add("Alpha text here.", page=1, section=("A",))
    b.add("Beta text here.", page=1, section=("B",))
    chunks = chunk(b.build(pages=1, fallback_title="x"), BIG)
    assert [(c.text, c.locator.section) for c in chunks] == [("Alpha text here.", ("A",)), ("Beta text here.", ("B",))]


def test_chunk_locator_covers_its_pages_and_locate_narrows_to_one_block() -> None:
    doc = two_section_document()
    storage = chunk(doc, BIG)[0]
    assert (storage.locator.page, storage.locator.page_end) == (1, 2)
    assert [b.page for b in storage.locator.bboxes] == [1, 2]

    start = storage.text.index("Drain the housing")
    narrowed = storage.locate(start, start + len("Drain the housing before winter."))
    assert (narrowed.page, narrowed.page_end) == (2, 2)
    assert narrowed.section == ("Guide", "Storage")
    assert narrowed.bboxes == (BBox(2, 10, 10, 100, 20),)

    first = storage.text.index("Keep the pump dry.")
    assert (storage.locate(first, first + 4).page, storage.locate(first, first + 4).page_end) == (1, 1)
    # A quote across the block boundary covers both pages.
    both = storage.locate(first, start + 5)
    assert (both.page, both.page_end) == (1, 2)


def test_chunk_char_range_is_its_text_in_the_document_when_made_of_whole_blocks() -> None:
    doc = two_section_document()
    for c in chunk(doc, BIG):
        assert doc.text[c.locator.char_start:c.locator.char_end] == c.text
        for span in c.spans:
            loc = c.locate(span.start, span.end)
            assert doc.text[loc.char_start:loc.char_end] == c.text[span.start:span.end]


def test_markdown_chunks_cover_the_line_ranges_of_their_blocks(markdown_path: Path) -> None:
    doc = MarkdownExtractor().extract(markdown_path, "md00000000000001")
    chunks = chunk(doc, BIG)
    # Lines worked out from conftest.MARKDOWN_TEXT: title 1, paragraph 3-4; "Devices" heading 6,
    # paragraph 8, table 10-13, list item 15; "Incidents" heading 17, paragraph 19.
    assert [(c.locator.section, c.locator.line_start, c.locator.line_end) for c in chunks] == [
        (("Security Policy",), 1, 4),
        (("Security Policy", "Devices"), 6, 15),
        (("Security Policy", "Incidents"), 17, 19),
    ]
    devices = chunks[1]
    start = devices.text.index("Laptop | 5 minutes")
    table = devices.locate(start, start + 5)
    assert (table.line_start, table.line_end) == (10, 13)
    item = devices.text.index("Report a lost device")
    assert (devices.locate(item, item + 6).line_start, devices.locate(item, item + 6).line_end) == (15, 15)
    assert all(c.locator.page is None and c.locator.page_end is None for c in chunks)


def test_pdf_chunks_keep_the_pages_and_sections_of_their_blocks(pdf_path: Path) -> None:
    doc = PdfExtractor().extract(pdf_path, "pdf0000000000001")
    chunks = chunk(doc, ChunkingConfig(target_tokens=40, overlap_tokens=0, max_block_tokens=40))
    assert len(chunks) > len({b.locator.section for b in doc.blocks})  # small target: sections are split
    for c in chunks:
        for span in c.spans:
            piece = c.text[span.start:span.end]
            owners = [b for b in doc.blocks if piece in b.text and b.locator.section == c.locator.section]
            assert owners, f"{piece!r} is not from a block of section {c.locator.section}"
            assert span.page == owners[0].locator.page
        pages = [s.page for s in c.spans]
        assert (c.locator.page, c.locator.page_end) == (min(pages), max(pages))
    covered = {s.page for c in chunks for s in c.spans}
    assert covered == {1, 2, 3}


def many_sentences_document(blocks: list[list[int]]) -> Document:
    b = DocumentBuilder(doc_id="d", source="x.pdf")
    for page, numbers in enumerate(blocks, 1):
        b.add(" ".join(sentence(i) for i in numbers), page=page, section=("T",))
    return b.build(pages=len(blocks), fallback_title="x")


def chunk_sentences(c: Chunk) -> list[int]:
    return [int(word) for word in c.text.split() if word.isdigit()]


def test_chunks_respect_target_tokens_and_keep_every_sentence_once_without_overlap() -> None:
    doc = many_sentences_document([list(range(0, 7)), list(range(7, 10)), list(range(10, 19))])
    cfg = ChunkingConfig(target_tokens=40, overlap_tokens=0, max_block_tokens=40)
    chunks = chunk(doc, cfg)
    assert all(count_tokens(c.text) <= 40 for c in chunks)
    assert [n for c in chunks for n in chunk_sentences(c)] == list(range(19))


def test_overlap_never_pushes_a_chunk_past_target_tokens() -> None:
    doc = many_sentences_document([list(range(0, 4)), list(range(4, 8))])
    cfg = ChunkingConfig(target_tokens=40, overlap_tokens=10, max_block_tokens=40)
    chunks = chunk(doc, cfg)
    assert all(count_tokens(c.text) <= 40 for c in chunks), [count_tokens(c.text) for c in chunks]
    # The first chunk is full, and the second's block fills the target alone: no room to overlap.
    assert [chunk_sentences(c) for c in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_overlap_opens_the_next_chunk_with_the_last_sentence_when_it_fits() -> None:
    doc = many_sentences_document([list(range(0, 3)), list(range(3, 5))])
    cfg = ChunkingConfig(target_tokens=40, overlap_tokens=10, max_block_tokens=40)
    chunks = chunk(doc, cfg)
    assert [chunk_sentences(c) for c in chunks] == [[0, 1, 2], [2, 3, 4]]
    # The repeated sentence keeps the page of the block it came from.
    assert [s.page for s in chunks[1].spans] == [1, 2]
    assert (chunks[1].locator.page, chunks[1].locator.page_end) == (1, 2)


def test_a_long_block_is_cut_at_sentence_boundaries() -> None:
    doc = many_sentences_document([list(range(12))])
    chunks = chunk(doc, ChunkingConfig(target_tokens=40, overlap_tokens=0, max_block_tokens=40))
    assert [chunk_sentences(c) for c in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert all(c.text.endswith("today.") for c in chunks)


def test_an_oversize_piece_is_a_chunk_of_its_own() -> None:
    run_on = " ".join(f"word{i}" for i in range(100))  # one 100-token sentence, no full stop
    b = DocumentBuilder(doc_id="d", source="x.md")
    b.add(sentence(0), section=("T",), line_start=1, line_end=1)
    b.add(run_on, section=("T",), line_start=3, line_end=3)
    b.add(sentence(1), section=("T",), line_start=5, line_end=5)
    doc = b.build(pages=None, fallback_title="x")
    chunks = chunk(doc, ChunkingConfig(target_tokens=40, overlap_tokens=0, max_block_tokens=500))
    assert [c.text for c in chunks] == [sentence(0), run_on, sentence(1)]
    assert [(c.locator.line_start, c.locator.line_end) for c in chunks] == [(1, 1), (3, 3), (5, 5)]


def test_a_run_on_sentence_longer_than_max_block_tokens_is_cut_at_tokens() -> None:
    words = [f"word{i}" for i in range(100)]
    b = DocumentBuilder(doc_id="d", source="x.md")
    b.add(" ".join(words), section=("T",), line_start=1, line_end=1)
    cfg = ChunkingConfig(target_tokens=40, overlap_tokens=0, max_block_tokens=40)
    chunks = chunk(b.build(pages=None, fallback_title="x"), cfg)
    assert all(count_tokens(c.text) <= 40 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == words


def test_chunk_ids_are_stable_for_the_same_input(pdf_path: Path) -> None:
    cfg = ChunkingConfig(target_tokens=40, overlap_tokens=8, max_block_tokens=40)
    first = chunk(PdfExtractor().extract(pdf_path, "pdf0000000000001"), cfg)
    second = chunk(PdfExtractor().extract(pdf_path, "pdf0000000000001"), cfg)
    assert first == second
    assert [c.chunk_id for c in first] == [f"pdf0000000000001:{i}" for i in range(len(first))]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"target_tokens": 15},
        {"overlap_tokens": -1},
        {"target_tokens": 50, "overlap_tokens": 50},
        {"max_block_tokens": 15},
    ],
)
def test_invalid_chunking_config_raises_config_error(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        ChunkingConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"max_file_bytes": 0}, {"max_chars_per_file": -1}])
def test_invalid_ingest_config_raises_config_error(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        IngestConfig(**kwargs)
