"""Retrieval at scale on the synthetic corpus (bench/synth_corpus.py): build time, index size on
disk, resident memory of the serving process, and search latency p50/p95 per leg.

    python bench/scale_bench.py --chunks 100000 [--backend faiss|milvus] [--no-dense] [--minilm]
                                [--rerank-model DIR] [--out bench/results/scale-faiss-100k.json]

Embedding is not what this measures, and MiniLM cannot embed a million chunks on two cores in
any reasonable time, so document vectors are synthetic: each sentence's vector is the
normalised sum of fixed random vectors of its words (BagProjectionEmbedder), 384-dimensional
like MiniLM's, so the dense index holds exactly what a MiniLM index would (one vector per
sentence, same dimension) and similar texts get similar vectors. With --minilm each search
also runs the real MiniLM on the query text, so the latency includes a real query embedding;
that vector is discarded (it lives in another space) and the synthetic query vector is searched.

The serving side runs in a fresh process (`serve` sub-command) through KnowledgeBase, as
`citekb serve` would: its resident memory is that of a server holding the index, not of the
builder. For Milvus the memory of the Milvus server process is added (milvus-lite runs one)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))

from citekb.api.process import fix_malloc_mmap_threshold, passive_openmp_waits  # noqa: E402

# Serve as the citekb command does (api/cli.py): OpenMP threads that sleep while they wait (set
# before torch loads) and glibc's mmap threshold pinned; a user's OMP_WAIT_POLICY is kept.
passive_openmp_waits()
fix_malloc_mmap_threshold()

from citekb.api.evaluate import latency_summary  # noqa: E402
from report import emit, header  # noqa: E402
from synth_corpus import generate, make_queries  # noqa: E402

SYNTH_MODEL_ID = "bench/bag-projection-384"
_TOKEN = re.compile(r"\w+", re.UNICODE)


class BagProjectionEmbedder:
    """Synthetic vectors, not a language model: a text's vector is the L2-normalised sum of one
    fixed random Gaussian vector per word (seeded by the word's crc32)."""

    model_id = SYNTH_MODEL_ID
    languages = ("en", "zh")

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self._vocab: dict[str, int] = {}
        self._rows: list[NDArray[np.float32]] = []

    def _word(self, word: str) -> NDArray[np.float32]:
        return np.random.default_rng(zlib.crc32(word.encode("utf-8"))).standard_normal(self.dim, np.float32)

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> NDArray[np.float32]:
        if len(texts) <= 4:  # queries: no cache, so a server's memory holds nothing of this
            out = np.stack([sum((self._word(w) for w in _TOKEN.findall(t.lower())), np.zeros(self.dim, np.float32))
                            for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        else:
            indptr, indices = [0], []
            for text in texts:
                for word in _TOKEN.findall(text.lower()):
                    col = self._vocab.get(word)
                    if col is None:
                        col = self._vocab[word] = len(self._vocab)
                        self._rows.append(self._word(word))
                    indices.append(col)
                indptr.append(len(indices))
            counts = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(texts), len(self._vocab)))
            out = np.asarray(counts @ np.stack(self._rows), np.float32) if self._rows else np.zeros((len(texts), self.dim), np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.where(norms > 0, norms, 1.0), np.float32)


class MiniLMTimedEmbedder(BagProjectionEmbedder):
    """Runs the real MiniLM on each query (so its cost is in the latency), then returns the
    synthetic vector the index can be searched with."""

    def __init__(self) -> None:
        super().__init__()
        from citekb.retrieval.embed import MINILM_ID
        from citekb.retrieval.factory import make_embedder

        self._minilm = make_embedder(MINILM_ID)

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> NDArray[np.float32]:
        self._minilm.embed(texts)
        return super().embed(texts, show_progress)


def rss_mb(pid: int) -> float:
    """Resident memory of pid and its children (milvus-lite's server is a child), in MiB."""
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


# --------------------------------------------------------------------------- build


def build(args: argparse.Namespace, index: Path) -> dict[str, Any]:
    from citekb.api.kb import KnowledgeBase
    from citekb.retrieval.analyze import analyze
    from citekb.retrieval.indexing import ChunkRows, dense_units, index_text
    from citekb.retrieval.store import DocumentRecord

    out: dict[str, Any] = {}
    t = time.perf_counter()
    chunks = list(generate(args.chunks, args.seed, show_progress=True))
    out["generate_s"] = round(time.perf_counter() - t, 1)
    queries = make_queries(chunks, args.queries, args.seed)
    index.parent.mkdir(parents=True, exist_ok=True)
    (index.parent / "queries.json").write_text(json.dumps([dataclasses.asdict(q) for q in queries], ensure_ascii=False), "utf-8")

    embedder = BagProjectionEmbedder()
    kb = KnowledgeBase(_settings(args, index), embedder=embedder)
    t0 = time.perf_counter()
    by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(chunks):
        by_doc.setdefault(c.locator.doc_id, []).append(i)
    analyze_s = vectors_s = add_s = 0.0
    from tqdm import tqdm

    with kb.store.writer():
        snapshot = kb.store.create(embedder.model_id, embedder.dim)
        for doc_id, rows in tqdm(by_doc.items(), desc="index", unit="doc", file=sys.stderr, leave=False):
            doc_chunks = [chunks[i] for i in rows]
            t = time.perf_counter()
            terms = [analyze(index_text(c)) for c in doc_chunks]
            analyze_s += time.perf_counter() - t
            t = time.perf_counter()
            if args.no_dense:
                vectors, owners = np.zeros((0, embedder.dim), np.float32), np.zeros(0, np.int64)
            else:
                units = [dense_units(c) for c in doc_chunks]
                vectors = embedder.embed([u for us in units for u in us])
                owners = np.repeat(np.arange(len(units)), [len(us) for us in units]).astype(np.int64)
            vectors_s += time.perf_counter() - t
            t = time.perf_counter()
            first = doc_chunks[0].locator
            record = DocumentRecord(doc_id=doc_id, source=first.source, path=f"/synthetic/{first.source}", title=first.title,
                                    pages=doc_chunks[-1].locator.page_end, chunks=len(doc_chunks), ingested_at=time.time(),
                                    groups=["staff"] if int(doc_id, 16) % 4 else ["finance"])
            snapshot.add(record, doc_chunks, ChunkRows(vectors=vectors, owners=owners, terms=terms))
            add_s += time.perf_counter() - t
        t = time.perf_counter()
        kb.store.publish(snapshot)
        publish_s = time.perf_counter() - t
    if hasattr(kb.store, "close"):
        kb.store.close()  # milvus-lite: one process at a time holds the database; the server opens it next
    out.update(build_s=round(time.perf_counter() - t0, 1), analyze_s=round(analyze_s, 1), vectors_s=round(vectors_s, 1),
               vectors="none (keyword only)" if args.no_dense else "synthetic (BagProjectionEmbedder), one per sentence",
               add_s=round(add_s, 1), publish_s=round(publish_s, 1), index_mb=round(dir_mb(index), 1))
    return out


def _settings(args: argparse.Namespace, index: Path, **overrides: Any) -> Any:
    from citekb.api.settings import Settings

    extra: dict[str, Any] = {}
    if getattr(args, "backend", "faiss") != "faiss":
        extra = {"backend": args.backend, "milvus_uri": str(index / "milvus.db")}
    return Settings(index=index, embedding_model=SYNTH_MODEL_ID, **extra, **overrides)


# --------------------------------------------------------------------------- serve


def serve(args: argparse.Namespace) -> dict[str, Any]:
    """In a fresh process: open the index as a server would, then time searches per leg."""
    from citekb.api.kb import KnowledgeBase

    queries = json.loads((args.index.parent / "queries.json").read_text("utf-8"))
    if args.faiss_threads:
        import faiss

        faiss.omp_set_num_threads(args.faiss_threads)
    embedder = MiniLMTimedEmbedder() if args.minilm else BagProjectionEmbedder()
    baseline = rss_mb(os.getpid())
    out: dict[str, Any] = {"rss_before_index_mb": round(baseline, 1)}
    legs = {"keyword": {"dense_weight": 0.0}, "hybrid": {}}
    if args.no_dense:
        legs = {"keyword": {"dense_weight": 0.0}}
    if args.rerank_model:
        legs.update({f"{name}+rerank": {**ov, "rerank": "cross-encoder", "rerank_model": args.rerank_model}
                     for name, ov in list(legs.items())})
    groups = {"staff"}
    for name, overrides in legs.items():
        kb = KnowledgeBase(_settings(args, args.index, **overrides), embedder=embedder)
        t = time.perf_counter()
        kb.warm_up()
        if "load_s" not in out:
            out["load_s"] = round(time.perf_counter() - t, 2)
            out["rss_mb"] = round(rss_mb(os.getpid()), 1)
        kb.search(queries[0]["query"], k=10)  # first-query costs (analyzer, caches) are not latency
        times, found, times_groups = [], 0, []
        for q in queries:
            t = time.perf_counter()
            hits = kb.search(q["query"], k=10)
            times.append((time.perf_counter() - t) * 1000)
            found += any(h.chunk.chunk_id == q["chunk_id"] for h in hits)
        for q in queries[: len(queries) // 2]:
            t = time.perf_counter()
            kb.search(q["query"], k=10, groups=groups)
            times_groups.append((time.perf_counter() - t) * 1000)
        out[name] = {**{k: round(v, 2) for k, v in latency_summary(times).items()},
                     "with_groups": {k: round(v, 2) for k, v in latency_summary(times_groups).items()},
                     "gold_in_top10": round(found / len(queries), 3), "queries": len(queries)}
    out["rss_after_mb"] = round(rss_mb(os.getpid()), 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def keyword_replicated(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword leg at args.times x the chunks of a built index: its analysed rows stacked
    args.times over (so every term's posting list is args.times as long, as in a corpus
    args.times as large drawn from the same text), searched through HybridSearcher with the
    dense leg off. Building a million-chunk index from scratch (generation and analysis) takes
    about an hour on two busy cores; the search cost depends only on the posting lists."""
    import scipy.sparse as sp
    from citekb.retrieval.config import RetrievalConfig
    from citekb.retrieval.store import IndexStore

    t = time.perf_counter()
    base = IndexStore(args.replicate).load()
    queries = json.loads((args.replicate.parent / "queries.json").read_text("utf-8"))
    snapshot = type(base)(model_id=base.model_id, dim=base.dim)
    n = len(base.chunks)
    # Each copy gets its own chunk id (the text is shared), so that a copy is a chunk the searcher
    # has not seen: its best-sentence cache would otherwise make nine copies in ten free.
    snapshot.chunks = [dataclasses.replace(c, chunk_id=f"{c.chunk_id}~{i}") if i else c
                       for i in range(args.times) for c in base.chunks]
    snapshot.documents = base.documents
    snapshot.keyword = base.keyword
    snapshot.keyword._tf = sp.vstack([base.keyword._tf] * args.times, format="csr")  # noqa: SLF001
    snapshot.keyword._weights = None  # noqa: SLF001
    snapshot.dense.add(np.zeros((0, base.dim), np.float32), np.zeros(0, np.int64), n * args.times)
    del base
    searcher = BagProjectionEmbedder()
    from citekb.retrieval.search import HybridSearcher

    hs = HybridSearcher(searcher, RetrievalConfig(weights={"bm25": 1.0, "dense": 0.0}))
    hs.search(snapshot, queries[0]["query"], k=10)  # builds the BM25 weight matrix once
    build_s = time.perf_counter() - t
    times = []
    for q in queries:
        t = time.perf_counter()
        hs.search(snapshot, q["query"], k=10)
        times.append((time.perf_counter() - t) * 1000)
    tf = snapshot.keyword._tf  # noqa: SLF001
    return {"rows": len(snapshot.chunks), "replicated_from": n, "times": args.times, "nonzeros": int(tf.nnz),
            "vocabulary": int(tf.shape[1]), "load_and_build_s": round(build_s, 1),
            "keyword": {k: round(v, 2) for k, v in latency_summary(times).items()}, "queries": len(queries),
            "rss_mb": round(rss_mb(os.getpid()), 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=["faiss", "milvus"], default="faiss")
    parser.add_argument("--no-dense", action="store_true", help="keyword leg only (no vectors): the 1M keyword benchmark")
    parser.add_argument("--minilm", action="store_true", help="run the real MiniLM on each query as part of its latency")
    parser.add_argument("--rerank-model", type=Path, help="a local cross-encoder directory: also time searches with rerank")
    parser.add_argument("--faiss-threads", type=int, default=0, help="FAISS OpenMP threads while serving (0: its default)")
    parser.add_argument("--workdir", type=Path, help="where to build the index (default: a temporary folder, removed after)")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    parser.add_argument("--replicate", type=Path, help="keyword leg only: an index built by this script (WORKDIR/index), "
                        "its rows stacked --times over")
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--serve", dest="index", type=Path, help=argparse.SUPPRESS)  # the serving child
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if args.replicate is not None:
        result = {**header(), **keyword_replicated(args)}
        emit(result, args.out)
        return
    if args.index is not None:
        print(json.dumps(serve(args)))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="citekb-scale-"))
    index = work / "index"
    try:
        result: dict[str, Any] = {"backend": args.backend, "chunks": args.chunks, **header(), "query_minilm": args.minilm,
                                  "faiss_threads": args.faiss_threads or "default"}
        result["build"] = build(args, index)
        print(json.dumps(result["build"]), file=sys.stderr)
        child = [sys.executable, __file__, "--serve", str(index), "--backend", args.backend, "--chunks", str(args.chunks)]
        child += ["--faiss-threads", str(args.faiss_threads)] + ["--no-dense"] * args.no_dense + ["--minilm"] * args.minilm
        child += ["--rerank-model", str(args.rerank_model)] if args.rerank_model else []
        done = subprocess.run(child, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"serving process failed:\n{done.stderr[-3000:]}")
        result["serve"] = json.loads(done.stdout.strip().splitlines()[-1])
        emit(result, args.out)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
