"""nDCG@10 on a BEIR folder (default ../shared/data/beir/scifact) for bm25, dense and hybrid.

    python bench/beir_eval.py [--data DIR] [--legs bm25 dense hybrid]

Published on SciFact: BM25 0.665, BM25 + cross-encoder 0.688 (BEIR paper)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from citekb.api.evaluate import build_snapshot, evaluate_beir, load_beir
from citekb.retrieval.config import RetrievalConfig
from citekb.retrieval.embed import MINILM_ID
from citekb.retrieval.factory import make_embedder
from citekb.retrieval.search import HybridSearcher

ROOT = Path(__file__).resolve().parent.parent
LEGS = {"bm25": {"bm25": 1.0, "dense": 0.0}, "dense": {"bm25": 0.0, "dense": 1.0}, "hybrid": {"bm25": 1.0, "dense": 1.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--legs", nargs="+", default=list(LEGS), choices=list(LEGS))
    parser.add_argument("--fusion", choices=("score", "rrf"), default="score")
    parser.add_argument("--dense-units", choices=("sentence", "chunk"), default="chunk")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        sys.exit(f"skipped: no BEIR folder at {args.data}")
    beir = load_beir(args.data)
    embedder = make_embedder(MINILM_ID)
    started = time.perf_counter()
    snapshot = build_snapshot(beir.documents, embedder, dense_units=args.dense_units, show_progress=True)
    print(f"indexed {len(beir.documents)} documents, {len(snapshot.chunks)} chunks in {time.perf_counter() - started:.0f} s")
    for leg in args.legs:
        searcher = HybridSearcher(embedder, RetrievalConfig(weights=LEGS[leg], fusion=args.fusion))
        report = evaluate_beir(lambda q, k, s=searcher: s.search(snapshot, q, k), beir)  # type: ignore[misc]
        metrics = {**report["doc"]["all"], **{f"latency_{q}_ms": v for q, v in report["latency_ms"].items()}}
        print(f"{leg:7} " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
