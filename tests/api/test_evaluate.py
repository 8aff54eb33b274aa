from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from citekb.api.evaluate import (
    build_snapshot,
    evaluate_beir,
    evaluate_gold,
    load_beir,
    load_gold,
    matches,
    ndcg_at_10,
    rank_metrics,
    recall_at,
)
from citekb.ingest.document import Locator
from citekb.ingest.errors import ConfigError
from citekb.retrieval.config import RetrievalConfig
from citekb.retrieval.search import HybridSearcher
from fakes import HashEmbedder


def loc(source: str, **kw: object) -> Locator:
    return Locator(doc_id="d", source=source, title="T", **kw)  # type: ignore[arg-type]


def test_pdf_gold_matches_a_page_range_of_at_most_two_pages() -> None:
    gold = {"file": "docs/a.pdf", "page": 3}
    assert matches(loc("a.pdf", page=3, page_end=3), gold)
    assert matches(loc("a.pdf", page=2, page_end=3), gold)
    assert not matches(loc("a.pdf", page=1, page_end=3), gold)  # spans three pages: too vague
    assert not matches(loc("a.pdf", page=4, page_end=4), gold)
    assert not matches(loc("b.pdf", page=3, page_end=3), gold)


def test_markdown_gold_matches_overlapping_lines_or_else_the_heading_path() -> None:
    gold = {"file": "n.md", "heading": "Notes > Setup", "line_start": 7, "line_end": 7}
    assert matches(loc("n.md", line_start=5, line_end=7), gold)
    assert not matches(loc("n.md", line_start=8, line_end=9), gold)
    assert matches(loc("n.md", section=("Notes", "Setup")), {"file": "n.md", "heading": "notes > setup"})
    assert not matches(loc("n.md", section=("Notes", "Setup", "Sub")), {"file": "n.md", "heading": "Notes > Setup"})


def test_rank_metrics_from_first_match_ranks() -> None:
    m = rank_metrics([1, 3, None, 11])
    assert m == {"hit@1": 0.25, "hit@5": 0.5, "hit@10": 0.5, "mrr@10": (1 + 1 / 3) / 4}


def test_ndcg_and_recall_worked_by_hand() -> None:
    relevant = {"a": 1, "b": 1}
    assert ndcg_at_10(["x", "a", "b"], relevant) == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_10(["a", "b"], relevant) == pytest.approx(1.0)
    assert recall_at(["a", "x"], relevant, 10) == 0.5


def test_load_gold_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "q1", "gold": [{"file": "a.pdf", "page": 1}]}\n{"gold": []}\n', "utf-8")
    with pytest.raises(ConfigError, match=r"^q\.jsonl:2: not a gold question"):
        load_gold(path)


def _tiny_beir(folder: Path) -> None:
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Volcano", "text": "Basalt lava flows from shield volcanoes in Hawaii."},
        {"_id": "d2", "title": "Orchard", "text": "Apple trees need pruning in late winter."},
        {"_id": "d3", "title": "Glacier", "text": "Glaciers carve fjords as they retreat."},
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus), "utf-8")
    queries = [{"_id": "q1", "text": "shield volcano lava"}, {"_id": "q2", "text": "pruning apple trees"},
               {"_id": "q9", "text": "unjudged"}]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), "utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n", "utf-8")


def test_beir_folder_is_indexed_and_scored_at_document_level(tmp_path: Path) -> None:
    _tiny_beir(tmp_path)
    beir = load_beir(tmp_path)
    assert sorted(beir.queries) == ["q1", "q2"]  # q9 has no judgements
    embedder = HashEmbedder()
    snapshot = build_snapshot(beir.documents, embedder)
    assert sorted(snapshot.documents) == ["d1", "d2", "d3"]
    searcher = HybridSearcher(embedder, RetrievalConfig(weights={"bm25": 1.0, "dense": 0.0}))
    metrics = evaluate_beir(lambda q, k: searcher.search(snapshot, q, k), beir)["doc"]["all"]
    assert metrics["ndcg@10"] == pytest.approx(1.0)
    assert metrics["mrr@10"] == pytest.approx(1.0)
    assert metrics["n"] == 2


def test_gold_evaluation_reports_misses(tmp_path: Path) -> None:
    _tiny_beir(tmp_path)
    beir = load_beir(tmp_path)
    embedder = HashEmbedder()
    snapshot = build_snapshot(beir.documents, embedder)
    searcher = HybridSearcher(embedder, RetrievalConfig(weights={"bm25": 1.0, "dense": 0.0}))
    questions = load_gold(_write(tmp_path / "q.jsonl", [
        {"id": "hit", "question": "fjords glaciers", "gold": [{"file": "d3", "heading": "Glacier"}]},
        {"id": "miss", "question": "fjords glaciers", "gold": [{"file": "d1", "heading": "Volcano"}]},
    ]))
    report = evaluate_gold(lambda q, k: searcher.search(snapshot, q, k), questions)
    assert report.search["en"]["hit@1"] == 0.5
    assert report.misses == ["miss"]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows), "utf-8")
    return path
