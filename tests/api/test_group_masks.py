"""Access-group masks through KnowledgeBase: a reader that has already masked searches for a
group (and so holds its snapshot's row-to-document table) loses a document the moment ingest
regroups it away; the dense-index settings reach the snapshots the store makes and loads; and
an index past CITEKB_ANN_MIN_VECTORS (IVF) serves masked searches and deletes through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from citekb.api.kb import KnowledgeBase
from citekb.retrieval.config import DenseIndexConfig

from api_contract import make_kb
from tiny_notes import WORDS, write_notes


def docs_found(kb: KnowledgeBase, word: str, groups: frozenset[str] | None) -> set[str]:
    return {h.chunk.locator.source for h in kb.search(word, k=20, groups=groups)}


def test_regrouping_hides_a_document_from_a_reader_that_saw_it(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    paths = write_notes(folder)
    writer = make_kb(tmp_path / "idx")
    writer.ingest([folder], groups=["hr"])
    reader = make_kb(tmp_path / "idx")  # another KnowledgeBase on the index, as a server holds
    hr, finance = frozenset({"hr"}), frozenset({"finance"})
    word, name = WORDS[0], paths[WORDS[0]].name
    for kb in (reader, writer):  # each has now masked its snapshot for hr
        assert name in docs_found(kb, word, hr) and not docs_found(kb, word, finance)

    writer.ingest([paths[WORDS[0]]], groups=["finance"])  # the same bytes: regrouped, not re-embedded

    for kb in (reader, writer):
        assert name not in docs_found(kb, word, hr)
        assert name in docs_found(kb, word, finance)
        assert paths[WORDS[1]].name in docs_found(kb, WORDS[1], hr)  # the others stay hr's
        assert name in docs_found(kb, word, None)


def test_dense_index_settings_reach_the_snapshots(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "idx", ann_min_vectors=1_000, ann_nprobe=7)
    want = DenseIndexConfig(ann_min_vectors=1_000, nprobe=7)
    assert kb.store.create("m", 8).dense.config == want
    write_notes(tmp_path / "docs")
    kb.ingest([tmp_path / "docs"])
    assert kb.snapshot().dense.config == want and not kb.snapshot().dense.approximate  # a few vectors: exact
    assert make_kb(tmp_path / "idx").snapshot().dense.config == DenseIndexConfig()


def test_an_approximate_index_through_ingest_search_and_delete(tmp_path: Path) -> None:
    """CITEKB_ANN_MIN_VECTORS lowered: the second file takes the index past it, a reader loads the
    IVF index, masked searches keep to their group and still fill k, and a delete keeps it IVF."""
    rng = np.random.default_rng(0)
    letters = np.array(list("bcdfghklmnprstvz"))
    folder = tmp_path / "docs"
    folder.mkdir()
    sentences: dict[str, list[str]] = {}
    for name in ("hr", "finance", "public"):
        words = ["".join(rng.choice(letters, 7)) for _ in range(300)]  # each file its own vocabulary
        sentences[name] = [" ".join(rng.choice(words, 10)).capitalize() + "." for _ in range(560)]
        paragraphs = [" ".join(sentences[name][i:i + 4]) for i in range(0, 560, 4)]
        (folder / f"{name}.md").write_text(f"# {name}\n\n" + "\n\n".join(paragraphs) + "\n", "utf-8")
    writer = make_kb(tmp_path / "idx", ann_min_vectors=1_000, chunk_tokens=60, chunk_overlap=0, ingest_workers=1)
    for name, groups in (("hr", ["hr"]), ("finance", ["finance"]), ("public", None)):
        writer.ingest([folder / f"{name}.md"], groups=groups)
    reader = make_kb(tmp_path / "idx", ann_min_vectors=1_000)
    dense = reader.snapshot().dense
    assert dense.approximate and dense.vector_count >= 1_500

    hr = frozenset({"hr"})
    hits = reader.search(sentences["hr"][7], k=50, groups=hr)
    assert hits[0].chunk.locator.source == "hr.md" and len(hits) == 50
    assert {h.chunk.locator.source for h in hits} <= {"hr.md", "public.md"}
    assert {h.chunk.locator.source for h in reader.search(sentences["finance"][3], k=50, groups=hr)} <= {"hr.md", "public.md"}

    writer.delete(next(r.doc_id for r in writer.documents() if r.source == "finance.md"))
    dense = reader.snapshot().dense
    assert dense.approximate and dense.vector_count >= 1_000
    assert reader.search(sentences["public"][11], k=5)[0].chunk.locator.source == "public.md"
    assert reader.search(sentences["hr"][20], k=5, groups=frozenset({"finance"}))[0].chunk.locator.source == "public.md"
