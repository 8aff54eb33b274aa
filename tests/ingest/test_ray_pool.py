"""Extraction on a (local) Ray: the same documents as the local pool, and a file that hangs on a
Ray worker fails alone, by its ExtractionWorker's time limit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings
from citekb.ingest.config import IngestConfig
from citekb.ingest.errors import ExtractionError
from citekb.ingest.ids import doc_id_for_file
from citekb.ingest.pipeline import default_extractors
from fakes import HangingExtractor, HashEmbedder

pytest.importorskip("ray", reason="Ray is optional: pip install 'citekb[ray]'")

from citekb.ingest.ray_pool import RayExtractionPool  # noqa: E402


@pytest.mark.slow  # starting Ray and its workers takes half a minute or more on two busy cores
def test_ray_ingest_matches_local_and_a_hanging_file_fails_alone(tmp_path: Path, corpus_dir: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(corpus_dir, docs)
    embedder = HashEmbedder()
    local = KnowledgeBase(Settings(index=tmp_path / "local", embedding_model=embedder.model_id), embedder=embedder)
    local.ingest([docs])
    stuck = docs / "stuck.hang"
    stuck.write_text("never read", "utf-8")
    extractors = (*default_extractors(), HangingExtractor())
    # The first pool starts a local Ray (as CITEKB_RAY_ADDRESS=local does) and keeps it for the
    # second part; a pool that started Ray stops it, one that found it running leaves it.
    import ray

    started = RayExtractionPool(extractors, workers=2, address="local")
    with started as pool:
        cfg = IngestConfig(timeout_s=2.0)
        files = sorted(docs.iterdir())
        pool.plan(files, cfg)
        read = {}
        for path in files:
            try:
                read[path.name] = pool.extract(path, doc_id_for_file(path), cfg)
            except ExtractionError as exc:
                read[path.name] = str(exc)
    assert read["stuck.hang"] == "cannot read stuck.hang: extraction took longer than 2 s"
    snapshot = local.snapshot()
    for name, document in read.items():
        if name != "stuck.hang":
            assert document.doc_id in snapshot.documents and document.source == name
    assert not ray.is_initialized()
    # The whole ingest through Ray, with the Ray of this test left running between ingests.
    stuck.unlink()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    via_ray = KnowledgeBase(Settings(index=tmp_path / "ray", embedding_model=embedder.model_id, ray_address="local"),
                            embedder=embedder)
    report = via_ray.ingest([docs])
    assert not report.failed
    assert [(c.chunk_id, c.text, c.locator) for c in via_ray.snapshot().chunks] == \
        [(c.chunk_id, c.text, c.locator) for c in local.snapshot().chunks]
    assert ray.is_initialized()  # the pool did not stop a Ray it had not started
    ray.shutdown()
