"""citekb export / import: an index moves between the directory backend and Milvus with its
vectors as they are (nothing is embedded again) and searches the same afterwards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from backend_kbs import make_kb
from citekb.api.cli import cli
from citekb.ingest.errors import ConfigError, IndexMismatchError
from citekb.retrieval.backends.migrate import export_index, import_index
from click.testing import CliRunner
from fakes import HashEmbedder

QUERIES = ["security desk extension", "drain the water from the pump housing", "full disk encryption laptops"]


def top_sources(kb) -> list[str]:
    return [kb.search(q, k=1)[0].chunk.locator.source for q in QUERIES]


@pytest.fixture
def faiss_kb(tmp_path: Path, corpus_dir: Path):
    kb = make_kb("faiss", tmp_path / "a")
    kb.ingest([corpus_dir], groups=None)
    return kb


def test_directory_index_to_milvus_and_back_keeps_documents_and_answers(faiss_kb, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    report = export_index(faiss_kb.store, dump, faiss_kb.settings.embedding_model)
    snapshot = faiss_kb.snapshot()
    assert (report.documents, report.chunks, report.vectors) == (3, len(snapshot.chunks), snapshot.dense.vector_count)
    assert json.loads((dump / "manifest.json").read_text())["embedding"]["model_id"] == HashEmbedder().model_id

    milvus = make_kb("milvus", tmp_path / "b")
    imported = import_index(milvus.store, dump, milvus.settings.embedding_model)
    assert imported.chunks == report.chunks
    assert sorted(r.doc_id for r in milvus.documents()) == sorted(r.doc_id for r in faiss_kb.documents())
    assert top_sources(milvus) == top_sources(faiss_kb)
    assert milvus.embedder.calls == len(QUERIES)  # the queries; the import itself embedded nothing

    back_dump = tmp_path / "dump2"
    again = export_index(milvus.store, back_dump)
    assert again.vectors == again.chunks == report.chunks  # Milvus holds one vector per chunk
    back = make_kb("faiss", tmp_path / "c")
    import_index(back.store, back_dump)
    assert top_sources(back) == top_sources(faiss_kb)
    assert sorted(c.chunk_id for c in back.snapshot().chunks) == sorted(c.chunk_id for c in snapshot.chunks)
    assert back.embedder.calls == len(QUERIES)
    # Milvus's vector for a chunk is the mean of the directory index's sentence vectors.
    vectors, owners = np.load(dump / "vectors.npy"), np.load(dump / "owners.npy")
    mean = vectors[owners == 0].sum(axis=0)
    row0 = json.loads((dump / "chunks.jsonl").read_text().splitlines()[0])["chunk_id"]
    exported = dict(zip([json.loads(line)["chunk_id"] for line in (back_dump / "chunks.jsonl").open()], np.load(back_dump / "vectors.npy")))
    assert np.allclose(exported[row0], mean / np.linalg.norm(mean), atol=1e-5)


def test_import_refuses_an_existing_index_unless_replace(faiss_kb, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    export_index(faiss_kb.store, dump)
    with pytest.raises(ConfigError, match="already holds an index"):
        import_index(faiss_kb.store, dump)
    import_index(faiss_kb.store, dump, replace=True)
    assert len(faiss_kb.documents()) == 3
    with pytest.raises(ConfigError, match="not empty"):
        export_index(faiss_kb.store, dump)


def test_import_checks_the_embedding_model_and_the_files(faiss_kb, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    export_index(faiss_kb.store, dump)
    target = make_kb("faiss", tmp_path / "t")
    with pytest.raises(IndexMismatchError, match="CITEKB_EMBEDDING_MODEL"):
        import_index(target.store, dump, expect_model_id="sentence-transformers/all-MiniLM-L6-v2")
    broken = tmp_path / "broken"
    shutil.copytree(dump, broken)
    np.save(broken / "owners.npy", np.load(broken / "owners.npy")[:-1])
    with pytest.raises(IndexMismatchError, match="damaged"):
        import_index(target.store, broken)
    with pytest.raises(ConfigError, match="not a citekb export"):
        import_index(target.store, tmp_path)


def test_cli_export_then_import_into_milvus(faiss_kb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("milvus_lite")
    monkeypatch.setenv("CITEKB_EMBEDDING_MODEL", HashEmbedder().model_id)
    runner = CliRunner()
    dump = tmp_path / "cli-dump"
    out = runner.invoke(cli, ["export", str(dump), "--index", str(faiss_kb.settings.index)])
    assert out.exit_code == 0, out.output
    assert "exported 3 documents" in out.output
    target = tmp_path / "m"
    out = runner.invoke(cli, ["import", str(dump), "--index", str(target / "index"), "--backend", "milvus"])
    assert out.exit_code == 0, out.output
    assert (target / "index" / "milvus.db").exists()
    assert top_sources(make_kb("milvus", target)) == top_sources(faiss_kb)
    out = runner.invoke(cli, ["import", str(dump), "--index", str(target / "index"), "--backend", "milvus"])
    assert out.exit_code == 1 and "--replace" in out.output
