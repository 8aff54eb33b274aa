"""A knowledge base of sample_docs/ on the hash embedder, and a TinyLM trained on it for a few
steps: tiny sizes so the whole folder runs in well under a minute on 2 cores."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings
from citekb.generation.tinylm.data import keyword_search
from citekb.generation.tinylm.train import TrainCorpus, TrainReport, train

from fakes import HashEmbedder

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # --import-mode=importlib puts no test folder on sys.path
    sys.path.insert(0, HERE)

from tinylm_support import HASH_MODEL, SAMPLE_DOCS, TINY  # noqa: E402


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    kb = KnowledgeBase(Settings(index=tmp_path_factory.mktemp("tinylm-index") / "idx", embedding_model=HASH_MODEL),
                       embedder=HashEmbedder())
    report = kb.ingest([SAMPLE_DOCS])
    assert report.failed == [] and len(report.ingested) == 6
    return kb


@pytest.fixture(scope="session")
def sample_corpus(sample_kb: KnowledgeBase) -> TrainCorpus:
    snapshot = sample_kb.snapshot()
    return TrainCorpus(snapshot.chunks, keyword_search(snapshot.chunks, snapshot.keyword))


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, sample_corpus: TrainCorpus) -> TrainReport:
    """A tiny TinyLM after both stages (read-only by convention: copy before changing)."""
    return train(TINY, sample_corpus, tmp_path_factory.mktemp("tinylm") / "model")
