"""The synthetic scale corpus (bench/synth_corpus.py): deterministic, sized as asked, readable."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from citekb.retrieval.store import chunk_from_json

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _synth():
    spec = importlib.util.spec_from_file_location("citekb_synth_corpus", BENCH / "synth_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_same_seed_same_corpus_and_the_size_asked() -> None:
    synth = _synth()
    a = list(synth.generate(300, seed=3))
    b = list(synth.generate(300, seed=3))
    assert len(a) == 300 and a == b
    assert list(synth.generate(300, seed=4)) != a
    assert len({c.chunk_id for c in a}) == 300


def test_chunks_are_prose_with_consistent_locators() -> None:
    synth = _synth()
    chunks = list(synth.generate(400, seed=1, zh_share=0.5))
    english = [c for c in chunks if not c.locator.source.startswith("zh-")]
    chinese = [c for c in chunks if c.locator.source.startswith("zh-")]
    assert english and chinese
    assert all(c.text.endswith(".") for c in english)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in c.text) for c in chinese)
    for c in chunks:
        assert c.chunk_id.startswith(c.locator.doc_id + ":")
        assert c.spans and c.spans[-1].end == len(c.text)
        assert c.locator.page == c.spans[0].page and c.locator.page_end == c.spans[-1].page
        assert c.locator.section[0] == c.locator.title


def test_queries_name_a_chunk_that_holds_their_words(tmp_path: Path) -> None:
    synth = _synth()
    synth.main(["--chunks", "200", "--queries", "20", "--out", str(tmp_path)])
    chunks = {c.chunk_id: c for c in (chunk_from_json(json.loads(line)) for line in (tmp_path / "chunks.jsonl").open())}
    queries = [json.loads(line) for line in (tmp_path / "queries.jsonl").open()]
    assert len(chunks) == 200 and len(queries) == 20
    for q in queries:
        text = chunks[q["chunk_id"]].text
        if q["language"] == "en":
            words = q["query"].removeprefix("What does the policy say about ").rstrip("?").split()
            assert all(w in text for w in words), q
        else:
            assert q["query"].endswith("有什么规定？")
