"""One retrieval contract, run on every backend: the index directory (FAISS + BM25) and Milvus
(embedded milvus-lite). Ingest, search, delete, re-ingest, sync, access groups and reopening
must behave the same through KnowledgeBase, whichever store holds the index."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from backend_kbs import BACKENDS, make_kb
from citekb.ingest.errors import DocumentNotFoundError, IndexNotFoundError


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def docs(tmp_path: Path, corpus_dir: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(corpus_dir, folder)
    return folder


def sources(hits: list) -> list[str]:
    return [h.chunk.locator.source for h in hits]


def test_search_before_any_ingest_says_there_is_no_index(backend: str, tmp_path: Path) -> None:
    kb = make_kb(backend, tmp_path)
    with pytest.raises(IndexNotFoundError):
        kb.search("encryption")
    assert kb.documents() == []


def test_ingest_then_search_finds_the_passage_with_its_location(backend: str, tmp_path: Path, docs: Path) -> None:
    kb = make_kb(backend, tmp_path)
    report = kb.ingest([docs])
    assert not report.failed and len(report.ingested) == 3
    assert sorted(r.source for r in kb.documents()) == ["field_guide.pdf", "security.md", "travel_policy.docx"]
    top = kb.search("security desk extension", k=3)[0]
    assert top.chunk.locator.source == "security.md"
    assert "4411" in top.chunk.text
    assert top.chunk.locator.section[0] == "Security Policy"
    # A page-numbered document keeps its pages.
    pump = kb.search("drain the water from the pump housing before storage", k=1)[0]
    assert pump.chunk.locator.source == "field_guide.pdf" and pump.chunk.locator.page == 1
    assert set(pump.scores) >= {"fused", "bm25", "dense"}


def test_text_the_embedder_cannot_read_is_found_by_keywords(backend: str, tmp_path: Path) -> None:
    """An English-only embedder gives a Chinese document no vectors: keyword search finds it for
    a Chinese query, and English queries search the rest as before."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nEmployees receive 27 days of paid annual leave.\n", encoding="utf-8")
    (folder / "pump.md").write_text("# 水泵\n\n存放水泵之前必须排干泵壳里的水。\n", encoding="utf-8")
    # (Enough documents for a term in one of them to weigh something in BM25.)
    (folder / "travel.md").write_text("# Travel\n\nBook flights through the travel desk.\n", encoding="utf-8")
    (folder / "laptops.md").write_text("# Laptops\n\nLaptops use full disk encryption.\n", encoding="utf-8")
    kb = make_kb(backend, tmp_path, languages=("en",))
    assert not kb.ingest([folder]).failed
    chinese = kb.search("水泵存放", k=2)
    assert chinese[0].chunk.locator.source == "pump.md" and "dense" not in chinese[0].scores
    english = kb.search("paid annual leave days", k=2)
    assert english[0].chunk.locator.source == "leave.md" and "dense" in english[0].scores
    assert all("dense" not in h.scores for h in english if h.chunk.locator.source == "pump.md")


def test_keyword_only_and_dense_only_legs(backend: str, tmp_path: Path, docs: Path) -> None:
    make_kb(backend, tmp_path).ingest([docs])
    keyword = make_kb(backend, tmp_path, dense_weight=0.0).search("full disk encryption laptops", k=2)
    assert keyword[0].chunk.locator.source == "security.md" and set(keyword[0].scores) == {"fused", "bm25"}
    dense = make_kb(backend, tmp_path, bm25_weight=0.0).search("full disk encryption laptops", k=2)
    assert dense[0].chunk.locator.source == "security.md" and "dense" in dense[0].scores


def test_delete_removes_the_document_and_its_chunks(backend: str, tmp_path: Path, docs: Path) -> None:
    kb = make_kb(backend, tmp_path)
    kb.ingest([docs])
    doc_id = next(r.doc_id for r in kb.documents() if r.source == "security.md")
    assert kb.delete(doc_id).source == "security.md"
    assert "security.md" not in [r.source for r in kb.documents()]
    assert "security.md" not in sources(kb.search("security desk extension 4411", k=10))
    with pytest.raises(DocumentNotFoundError):
        kb.delete(doc_id)


def test_reingest_is_a_no_op_and_a_changed_file_replaces_its_chunks(backend: str, tmp_path: Path, docs: Path) -> None:
    kb = make_kb(backend, tmp_path)
    kb.ingest([docs])
    again = kb.ingest([docs])
    assert all(entry.unchanged for entry in again.ingested)
    md = docs / "security.md"
    md.write_text(md.read_text("utf-8").replace("extension 4411", "extension 5522 (night shift)"), "utf-8")
    kb.ingest([md])
    hits = kb.search("security desk extension", k=10)
    texts = [h.chunk.text for h in hits if h.chunk.locator.source == "security.md"]
    assert any("5522" in t for t in texts) and not any("4411" in t for t in texts)
    assert len(kb.documents()) == 3


def test_sync_removes_deleted_files_and_follows_moved_ones(backend: str, tmp_path: Path, docs: Path) -> None:
    kb = make_kb(backend, tmp_path)
    kb.ingest([docs])
    (docs / "travel_policy.docx").unlink()
    (docs / "security.md").rename(docs / "policy.md")
    report = kb.ingest([docs], sync=True)
    assert [Path(r.path).name for r in report.removed] == ["travel_policy.docx"]
    assert sorted(r.source for r in kb.documents()) == ["field_guide.pdf", "policy.md"]
    top = kb.search("security desk extension", k=1)[0]
    assert top.chunk.locator.source == "policy.md"  # the moved file's chunks name it by its new name


def test_access_groups_filter_the_search(backend: str, tmp_path: Path, docs: Path) -> None:
    kb = make_kb(backend, tmp_path)
    kb.ingest([docs / "security.md"], groups=["it-security"])
    kb.ingest([docs / "field_guide.pdf", docs / "travel_policy.docx"])
    query = "security desk extension 4411"
    assert "security.md" in sources(kb.search(query, k=10))
    assert "security.md" in sources(kb.search(query, k=10, groups={"it-security"}))
    outsider = kb.search(query, k=10, groups={"sales"})
    assert outsider and "security.md" not in sources(outsider)
    assert "security.md" not in [r.source for r in kb.documents(groups={"sales"})]
    # Ingesting again with other groups regroups the document without re-reading it.
    kb.ingest([docs / "security.md"], groups=["sales"])
    assert "security.md" in sources(kb.search(query, k=10, groups={"sales"}))
    assert "security.md" not in sources(kb.search(query, k=10, groups={"it-security"}))


def test_a_new_knowledge_base_on_the_same_index_sees_the_same_documents(backend: str, tmp_path: Path, docs: Path) -> None:
    kb = make_kb(backend, tmp_path)
    kb.ingest([docs])
    before = [(h.chunk.chunk_id, h.chunk.locator) for h in kb.search("replace the filter", k=3)]
    if hasattr(kb.store, "close"):
        kb.store.close()  # milvus-lite: stop this process's server, so the next one starts from the file
    reopened = make_kb(backend, tmp_path)
    assert sorted(r.doc_id for r in reopened.documents()) == sorted(r.doc_id for r in kb.documents())
    assert [(h.chunk.chunk_id, h.chunk.locator) for h in reopened.search("replace the filter", k=3)] == before


def test_a_reader_sees_what_another_writer_published(backend: str, tmp_path: Path, docs: Path) -> None:
    reader = make_kb(backend, tmp_path)
    writer = make_kb(backend, tmp_path)
    writer.ingest([docs / "field_guide.pdf"])
    assert [r.source for r in reader.documents()] == ["field_guide.pdf"]
    writer.ingest([docs / "security.md"])
    assert sorted(r.source for r in reader.documents()) == ["field_guide.pdf", "security.md"]
    assert reader.search("security desk extension", k=1)[0].chunk.locator.source == "security.md"
