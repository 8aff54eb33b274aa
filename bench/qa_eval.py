"""Page-level retrieval quality and cited-page accuracy on a gold QA folder, in process.

    python bench/qa_eval.py [--data ../shared/data/qa] [--legs bm25 dense hybrid] [--ask 300]

Matching uses the acceptance scorer's own rule (../shared/tools/score.py, location_matches),
so these numbers mean what acceptance means. The index is built once into bench/results/."""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
LEGS = {"bm25": (1.0, 0.0), "dense": (0.0, 1.0), "hybrid": (1.0, 1.0)}


def load_scorer():
    path = SHARED / "tools" / "score.py"
    if not path.is_file():
        sys.exit(f"skipped: the acceptance scorer {path} is absent")
    spec = importlib.util.spec_from_file_location("citekb_score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "qa")
    parser.add_argument("--index", type=Path, default=ROOT / "bench" / "results" / "qa-index")
    parser.add_argument("--legs", nargs="+", default=list(LEGS), choices=list(LEGS))
    parser.add_argument("--ask", type=int, default=0, help="also score ask on this many questions (hybrid)")
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (args.data / "questions.jsonl").is_file():
        sys.exit(f"skipped: no gold data at {args.data}")
    score = load_scorer()
    questions = [json.loads(line) for line in (args.data / "questions.jsonl").read_text("utf-8").splitlines() if line.strip()]
    if args.sample:
        questions = questions[:: max(1, len(questions) // args.sample)]
    kb = KnowledgeBase(Settings(index=args.index))
    started = time.perf_counter()
    report = kb.ingest([args.data / "docs"])
    ingest_s = time.perf_counter() - started
    pages = sum(f.pages or 0 for f in report.ingested if not f.unchanged)
    print(f"ingest: {len(report.ingested)} files, {len(report.failed)} failed, {ingest_s:.1f} s"
          + (f", {pages / ingest_s:.1f} pages/s" if pages else " (index reused)"))
    results = {}
    for leg in args.legs:
        bm25_w, dense_w = LEGS[leg]
        kb = KnowledgeBase(Settings(index=args.index, bm25_weight=bm25_w or 0.0, dense_weight=dense_w))
        by_lang: dict[str, list[int | None]] = defaultdict(list)
        latency = []
        for q in questions:
            t = time.perf_counter()
            hits = kb.search(q["question"], k=10)
            latency.append((time.perf_counter() - t) * 1000)
            items = [{"source": h.chunk.locator.source, "page": h.chunk.locator.page, "page_end": h.chunk.locator.page_end,
                      "line_start": h.chunk.locator.line_start, "line_end": h.chunk.locator.line_end,
                      "section": h.chunk.locator.section_path} for h in hits]
            by_lang[q["lang"]].append(score.first_rank(items, lambda it: any(score.location_matches(it, g) for g in q["gold"])))
        results[leg] = {}
        for lang, ranks in sorted(by_lang.items()):
            n = len(ranks)
            m = {f"hit@{k}": sum(r is not None and r <= k for r in ranks) / n for k in (1, 5, 10)}
            m["mrr@10"] = sum(1 / r for r in ranks if r is not None) / n
            m["n"] = n
            results[leg][lang] = m
            print(f"{leg:7} {lang}: " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items()))
        print(f"{leg:7} latency ms p50 {statistics.median(latency):.1f} p95 {sorted(latency)[int(0.95 * len(latency))]:.1f}")
    if args.ask:
        kb = KnowledgeBase(Settings(index=args.index))
        sample = questions[:: max(1, len(questions) // args.ask)]
        per_lang: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for q in sample:
            answer = kb.ask(q["question"])
            cites = [{"source": c.locator.source, "page": c.locator.page, "page_end": c.locator.page_end,
                      "line_start": c.locator.line_start, "line_end": c.locator.line_end,
                      "section": c.locator.section_path, "text": c.quote} for c in answer.citations]
            good = [any(score.location_matches(c, g) for g in q["gold"]) or score.contains_answer(c["text"], q["answers"], q["lang"]) for c in cites]
            _, f1 = score.score_answer(answer.text, q["answers"], q["lang"])
            per_lang[q["lang"]].append((sum(good) / len(good) if good else float("nan"), f1 or 0.0))
        for lang, vals in sorted(per_lang.items()):
            precs = [p for p, _ in vals if p == p]
            print(f"ask {lang}: cited-page precision {sum(precs) / max(1, len(precs)):.3f} (answers with citations {len(precs)}/{len(vals)})"
                  f"  F1 {sum(f for _, f in vals) / len(vals):.3f}")
        results["ask"] = {lang: {"citation_precision": sum(p for p, _ in v if p == p) / max(1, sum(p == p for p, _ in v))} for lang, v in per_lang.items()}
    if args.json:
        args.json.write_text(json.dumps({"ingest_s": ingest_s, "results": results}, indent=1))


if __name__ == "__main__":
    main()
