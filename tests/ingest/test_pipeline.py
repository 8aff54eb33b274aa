from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF

from citekb.ingest.config import IngestConfig
from citekb.ingest.errors import ExtractionError, UnsupportedFormatError
from citekb.ingest.extract.markdown import MarkdownExtractor
from citekb.ingest.pipeline import SkippedFile, default_extractors, discover, extract

EXTRACTORS = default_extractors()


def touch(root: Path, relative: str, data: bytes = b"x") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    for name in (
        "a.md", "B.MD", "notes.txt", "README", "sub/b.pdf", "sub/deeper/c.docx", "sub/deeper/photo.png",
        ".secret.md", ".git/config.md", "sub/.cache/d.pdf",
    ):
        touch(root, name)
    return root


def test_discover_walks_folders_recursively_and_skips_hidden_ones(tree: Path) -> None:
    files, skipped = discover([tree], EXTRACTORS)
    assert files == [(tree / name).resolve() for name in ("B.MD", "a.md", "sub/b.pdf", "sub/deeper/c.docx")]
    assert skipped == [
        SkippedFile(str(tree / "README"), "unsupported file type '(none)'"),
        SkippedFile(str(tree / "notes.txt"), "unsupported file type '.txt'"),
        SkippedFile(str(tree / "sub/deeper/photo.png"), "unsupported file type '.png'"),
    ]


def test_discover_lists_each_file_once_and_accepts_single_files(tree: Path) -> None:
    files, skipped = discover([tree / "sub", tree / "a.md", tree / "sub" / "b.pdf", tree / "notes.txt"], EXTRACTORS)
    assert files == [(tree / name).resolve() for name in ("sub/b.pdf", "sub/deeper/c.docx", "a.md")]
    assert [s.path for s in skipped] == [str(tree / "sub/deeper/photo.png"), str(tree / "notes.txt")]


def test_a_hidden_file_named_explicitly_is_taken(tree: Path) -> None:
    files, _ = discover([tree / ".secret.md"], EXTRACTORS)
    assert files == [(tree / ".secret.md").resolve()]


def test_discover_only_takes_the_suffixes_of_the_given_extractors(tree: Path) -> None:
    files, skipped = discover([tree / "sub"], [MarkdownExtractor()])
    assert files == []
    assert [s.reason for s in skipped] == ["unsupported file type '.pdf'", "unsupported file type '.docx'",
                                           "unsupported file type '.png'"]


def test_discover_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        discover([tmp_path / "nowhere"], EXTRACTORS)


def test_extract_returns_the_extractors_document(markdown_path: Path) -> None:
    document = extract(markdown_path, "md1", IngestConfig(), EXTRACTORS)
    assert document == MarkdownExtractor().extract(markdown_path, "md1")


def test_extract_empty_file(tmp_path: Path) -> None:
    path = touch(tmp_path, "empty.md", b"")
    with pytest.raises(ExtractionError, match=r"^cannot read empty\.md: the file is empty"):
        extract(path, "x", IngestConfig(), EXTRACTORS)


def test_extract_refuses_files_over_max_file_bytes(markdown_path: Path) -> None:
    size = markdown_path.stat().st_size
    extract(markdown_path, "x", IngestConfig(max_file_bytes=size), EXTRACTORS)  # at the limit: fine
    with pytest.raises(ExtractionError, match=rf"^cannot read {markdown_path.name}: .* over the .* limit"):
        extract(markdown_path, "x", IngestConfig(max_file_bytes=size - 1), EXTRACTORS)


def test_extract_refuses_text_over_max_chars_per_file(tmp_path: Path) -> None:
    path = touch(tmp_path, "long.md", b"# T\n\n" + b"word " * 100)
    extract(path, "x", IngestConfig(max_chars_per_file=500), EXTRACTORS)
    with pytest.raises(ExtractionError, match=r"^cannot index long\.md: more than 100 characters of text \(the per-file limit\)"):
        extract(path, "x", IngestConfig(max_chars_per_file=100), EXTRACTORS)


def test_extract_a_file_without_text(tmp_path: Path) -> None:
    path = touch(tmp_path, "blank.md", b"\n\n   \n")
    with pytest.raises(ExtractionError, match=r"^cannot index blank\.md: no extractable text"):
        extract(path, "x", IngestConfig(), EXTRACTORS)


def test_extract_unsupported_format(tmp_path: Path) -> None:
    path = touch(tmp_path, "data.csv", b"a,b\n")
    with pytest.raises(UnsupportedFormatError, match=r"^data\.csv: unsupported file type '\.csv'; citekb reads .*\.pdf"):
        extract(path, "x", IngestConfig(), EXTRACTORS)


def test_extract_encrypted_pdf(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="o", user_password="u")
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.cell(0, 10, "secret")
    path = tmp_path / "locked.pdf"
    pdf.output(str(path))
    with pytest.raises(ExtractionError, match=r"^cannot read locked\.pdf: the PDF is encrypted and needs a password$"):
        extract(path, "x", IngestConfig(), EXTRACTORS)


def test_extract_corrupt_pdf(tmp_path: Path) -> None:
    path = touch(tmp_path, "broken.pdf", b"%PDF-1.7\n%%EOF garbage")
    with pytest.raises(ExtractionError, match=r"^cannot read broken\.pdf: not a readable PDF"):
        extract(path, "x", IngestConfig(), EXTRACTORS)


def test_extract_docx_that_is_not_a_zip(tmp_path: Path) -> None:
    path = touch(tmp_path, "report.docx", b"plain text pretending to be Word")
    with pytest.raises(ExtractionError, match=r"^cannot read report\.docx: not a DOCX file"):
        extract(path, "x", IngestConfig(), EXTRACTORS)
