from __future__ import annotations

import hashlib
from pathlib import Path

from citekb.ingest.ids import DOC_ID_LENGTH, chunk_id, doc_id_for_bytes, doc_id_for_file


def test_doc_id_is_the_sha256_prefix_of_the_bytes() -> None:
    assert doc_id_for_bytes(b"abc") == "ba7816bf8f01cfea"
    assert len(doc_id_for_bytes(b"")) == DOC_ID_LENGTH == 16


def test_doc_id_for_file_depends_on_bytes_only(tmp_path: Path) -> None:
    data = b"same bytes, different names" * 100_000  # > 1 MiB: read in more than one block
    first = tmp_path / "a.pdf"
    second = tmp_path / "sub" / "renamed.pdf"
    second.parent.mkdir()
    first.write_bytes(data)
    second.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()[:16]
    assert doc_id_for_file(first) == doc_id_for_file(second) == doc_id_for_bytes(data) == expected


def test_changed_bytes_change_the_doc_id(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_bytes(b"# One\n")
    before = doc_id_for_file(path)
    path.write_bytes(b"# Two\n")
    assert doc_id_for_file(path) != before


def test_chunk_id_format() -> None:
    assert chunk_id("0123456789abcdef", 7) == "0123456789abcdef:7"
