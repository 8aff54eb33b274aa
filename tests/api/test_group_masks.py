"""Access-group masks through KnowledgeBase: a reader that has already masked searches for a
group (and so holds its snapshot's row-to-document table) loses a document the moment ingest
regroups it away; and the dense-index settings reach the snapshots the store makes and loads."""

from __future__ import annotations

from pathlib import Path

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
