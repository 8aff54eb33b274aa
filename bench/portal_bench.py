"""What access control and the portal routes cost: the group mask inside both search legs, and
a key check per request.

    python bench/portal_bench.py [--chunks 20000] [--queries 100] [--json out.json]

1. Search with a group mask. A synthetic index (bench/synth_corpus.py) of --chunks chunks,
   embedded with the tests' HashEmbedder at 384 dimensions (MiniLM's size; the cost measured is
   the index's, not the model's), documents put in groups so that a reader sees all, 50% or 5% of
   the chunks. For each, the time to build the mask (Snapshot.readable) and HybridSearcher.search
   with k=10, median and p95 over --queries questions.
2. Per-request overhead. FastAPI TestClient (in process) on the tiny test corpus: GET
   /v1/documents open (no keys) against with a key (hash check, rate-limit bucket, access
   groups), and POST /v1/ask against /v1/chat/completions (whole and streamed) with the same key.

Prints markdown tables; --json writes the numbers."""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from fakes import HashEmbedder  # noqa: E402
from synth_corpus import generate, make_queries  # noqa: E402

from citekb.retrieval.config import RetrievalConfig  # noqa: E402
from citekb.retrieval.indexing import prepare  # noqa: E402
from citekb.retrieval.search import HybridSearcher  # noqa: E402
from citekb.retrieval.store import DocumentRecord, Snapshot  # noqa: E402


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"n": len(ms), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)}


def mask_bench(n_chunks: int, n_queries: int) -> list[dict[str, Any]]:
    chunks = list(generate(n_chunks, seed=0, show_progress=True))
    queries = [q.query for q in make_queries(chunks, n_queries, seed=0)]
    embedder = HashEmbedder(dim=384)
    snapshot = Snapshot(model_id=embedder.model_id, dim=embedder.dim)
    by_doc: dict[str, list[Any]] = {}
    for c in chunks:
        by_doc.setdefault(c.locator.doc_id, []).append(c)
    t = time.perf_counter()
    for i, (doc_id, doc_chunks) in enumerate(by_doc.items()):
        # One document in twenty has no group (everyone reads it), nine are in "a", ten in "b".
        group = [] if i % 20 == 0 else ["a"] if i % 20 < 10 else ["b"]
        record = DocumentRecord(doc_id=doc_id, source=doc_chunks[0].locator.source, path=f"/synthetic/{doc_id}",
                                title=doc_chunks[0].locator.title, pages=None, chunks=len(doc_chunks), ingested_at=0.0,
                                groups=group)
        snapshot.add(record, doc_chunks, prepare(doc_chunks, embedder))
    print(f"indexed {len(chunks)} chunks of {len(by_doc)} documents in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    searcher = HybridSearcher(embedder, RetrievalConfig())
    rows = []
    for label, groups in (("every group (no mask)", None), ("group b: ~55%", frozenset({"b"})),
                          ("no group: ~5%", frozenset())):
        mask = snapshot.readable(groups)
        visible = len(chunks) if mask is None else int(mask.sum())
        build = timed(lambda: snapshot.readable(groups), 20)
        it = iter(queries * 2)
        searcher.search(snapshot, queries[0], 10, mask)  # warm
        search = timed(lambda: searcher.search(snapshot, next(it), 10, snapshot.readable(groups)), len(queries))
        rows.append({"reader": label, "visible_chunks": visible, "mask_build": summary(build), "search_k10": summary(search)})
    return rows


def http_bench(n: int) -> list[dict[str, Any]]:
    from fastapi.testclient import TestClient

    from citekb.api.http.app import create_app
    from citekb.api.kb import KnowledgeBase
    from citekb.api.keys import KeyStore
    from citekb.api.settings import Settings

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_docs import MARKDOWN_TEXT, write_docx, write_pdf

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        write_pdf(docs / "field_guide.pdf")
        write_docx(docs / "travel_policy.docx")
        (docs / "security.md").write_text(MARKDOWN_TEXT, "utf-8")
        kb = KnowledgeBase(Settings(index=Path(tmp) / "idx", embedding_model="test/hash-embedder", rate_limit_per_min=0),
                           embedder=HashEmbedder())
        kb.ingest([docs])
        question = "How often should the intake filter be replaced?"
        chat = {"model": "citekb", "messages": [{"role": "user", "content": question}]}
        with TestClient(create_app(kb)) as client:
            client.get("/v1/documents")
            rows.append({"request": "GET /v1/documents, open (no keys)", **summary(timed(lambda: client.get("/v1/documents"), n))})
            secret = KeyStore.for_index(kb.settings.index).create("bench", {"default": "read"}, ["hr"]).secret
            auth = {"Authorization": f"Bearer {secret}"}
            rows.append({"request": "GET /v1/documents, with a key", **summary(timed(lambda: client.get("/v1/documents", headers=auth), n))})
            rows.append({"request": "POST /v1/ask, with a key",
                         **summary(timed(lambda: client.post("/v1/ask", json={"query": question}, headers=auth), n))})
            rows.append({"request": "POST /v1/chat/completions, with a key",
                         **summary(timed(lambda: client.post("/v1/chat/completions", json=chat, headers=auth), n))})

            def stream() -> None:
                with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}, headers=auth) as r:
                    for _ in r.iter_lines():
                        pass

            rows.append({"request": "POST /v1/chat/completions stream, with a key", **summary(timed(stream, n))})
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    masks = mask_bench(args.chunks, args.queries)
    http = http_bench(args.requests)
    print(f"\n{args.chunks} chunks, k=10, {args.queries} queries; {platform.machine()}, Python {platform.python_version()}, "
          f"{datetime.date.today()}\n")
    print("| reader sees | visible chunks | mask build p50 ms | search p50 ms | search p95 ms |\n|---|---:|---:|---:|---:|")
    for r in masks:
        print(f"| {r['reader']} | {r['visible_chunks']} | {r['mask_build']['p50_ms']} | {r['search_k10']['p50_ms']} | "
              f"{r['search_k10']['p95_ms']} |")
    print("\n| request | n | p50 ms | p95 ms |\n|---|---:|---:|---:|")
    for r in http:
        print(f"| {r['request']} | {r['n']} | {r['p50_ms']} | {r['p95_ms']} |")
    if args.json:
        args.json.write_text(json.dumps({"masks": masks, "http": http}, indent=1), "utf-8")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
