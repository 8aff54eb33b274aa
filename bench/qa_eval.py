"""Page-level retrieval quality, cited-page precision, ingest speed and search latency on a
gold QA folder, in process.

    python bench/qa_eval.py [--data ../shared/data/qa] [--legs bm25 dense hybrid] [--ask 0]

--data is a folder with questions.jsonl and either docs/ (../shared/data/qa) or the documents
themselves (sample_docs/). Matching uses the acceptance scorer's own rules
(../shared/tools/score.py: location_matches, contains_answer), imported from ../shared, so
these numbers mean what acceptance means. The index is built fresh in a temporary folder."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

from citekb.api.evaluate import latency_summary, rank_metrics
from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings
from citekb.ingest.document import Locator

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
LEGS = {"bm25": (1.0, 0.0), "dense": (0.0, 1.0), "hybrid": (1.0, 1.0)}


def load_scorer() -> ModuleType:
    path = SHARED / "tools" / "score.py"
    if not path.is_file():
        sys.exit(f"skipped: the acceptance scorer {path} is absent")
    spec = importlib.util.spec_from_file_location("citekb_score", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_item(loc: Locator, text: str = "") -> dict[str, Any]:
    return {"source": loc.source, "page": loc.page, "page_end": loc.page_end, "line_start": loc.line_start,
            "line_end": loc.line_end, "section": loc.section_path, "text": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "qa")
    parser.add_argument("--legs", nargs="+", default=list(LEGS), choices=list(LEGS))
    parser.add_argument("--ask", type=int, default=0, help="score ask on every n-th question (0: all)")
    parser.add_argument("--fusion", choices=("score", "rrf"), default="score")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    questions_path = args.data / "questions.jsonl"
    if not questions_path.is_file():
        sys.exit(f"skipped: no gold questions at {questions_path}")
    docs = args.data / "docs" if (args.data / "docs").is_dir() else args.data
    score = load_scorer()
    questions = [json.loads(line) for line in questions_path.read_text("utf-8").splitlines() if line.strip()]
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": datetime.date.today().isoformat(), "data": str(args.data), "questions": len(questions),
    }
    with tempfile.TemporaryDirectory(prefix="citekb-bench-") as tmp:
        index = Path(tmp) / "index"
        kb = KnowledgeBase(Settings(index=index))
        kb.embedder  # load the model first: ingest speed is measured without start-up
        started = time.perf_counter()
        report = kb.ingest([docs])
        seconds = time.perf_counter() - started
        pages = sum(f.pages or 0 for f in report.ingested)
        chunks = sum(f.chunks for f in report.ingested)
        results["ingest"] = {"files": len(report.ingested), "failed": len(report.failed), "pages": pages, "chunks": chunks,
                             "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 2)}
        print(f"ingest: {len(report.ingested)} files ({len(report.failed)} failed), {pages} pages, {chunks} chunks "
              f"in {seconds:.1f} s = {pages / seconds:.2f} pages/s (model loaded beforehand)")
        for leg in args.legs:
            bm25_w, dense_w = LEGS[leg]
            leg_kb = KnowledgeBase(Settings(index=index, bm25_weight=bm25_w, dense_weight=dense_w, fusion=args.fusion),
                                   embedder=kb.embedder)
            ranks: dict[str, list[int | None]] = defaultdict(list)
            latency: list[float] = []
            for q in questions:
                t = time.perf_counter()
                hits = leg_kb.search(q["question"], k=10)
                latency.append((time.perf_counter() - t) * 1000)
                items = [as_item(h.chunk.locator) for h in hits]
                ranks[q["lang"]].append(score.first_rank(items, lambda it: any(score.location_matches(it, g) for g in q["gold"])))
            leg_results: dict[str, Any] = {}
            for lang, rs in sorted(ranks.items()):
                m: dict[str, Any] = {name: round(v, 3) for name, v in rank_metrics(rs).items()}
                m["n"] = len(rs)
                leg_results[lang] = m
                print(f"search {leg:7} {lang}: " + "  ".join(f"{k} {v}" for k, v in m.items()))
            leg_results["latency_ms"] = {name: round(v, 1) for name, v in latency_summary(latency).items()}
            print(f"search {leg:7} latency ms p50 {leg_results['latency_ms']['p50']} p95 {leg_results['latency_ms']['p95']}")
            results[f"search_{leg}"] = leg_results
        sample = questions[:: args.ask] if args.ask else questions
        per_lang: dict[str, list[tuple[float | None, float, bool]]] = defaultdict(list)
        latency = []
        for q in sample:
            t = time.perf_counter()
            answer = kb.ask(q["question"])
            latency.append((time.perf_counter() - t) * 1000)
            cites = [as_item(c.locator, c.quote) for c in answer.citations]
            good = [any(score.location_matches(c, g) for g in q["gold"]) or score.contains_answer(c["text"], q["answers"], q["lang"])
                    for c in cites]
            contained, f1 = score.score_answer(answer.text, q["answers"], q["lang"])
            per_lang[q["lang"]].append((sum(good) / len(good) if good else None, f1 or 0.0, bool(contained)))
        ask_results: dict[str, Any] = {}
        for lang, vals in sorted(per_lang.items()):
            precisions = [p for p, _, _ in vals if p is not None]
            ask_results[lang] = {
                "n": len(vals), "citation_precision": round(sum(precisions) / max(1, len(precisions)), 3),
                "cites_present": round(len(precisions) / len(vals), 3),
                "answer_contains_gold": round(sum(c for *_, c in vals) / len(vals), 3),
                "f1": round(sum(f for _, f, _ in vals) / len(vals), 3),
            }
            print(f"ask {lang}: " + "  ".join(f"{k} {v}" for k, v in ask_results[lang].items()))
        ask_results["latency_ms"] = {name: round(v, 1) for name, v in latency_summary(latency).items()}
        print(f"ask latency ms p50 {ask_results['latency_ms']['p50']} p95 {ask_results['latency_ms']['p95']}")
        results["ask"] = ask_results
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
