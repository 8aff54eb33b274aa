"""The approximate dense index (retrieval/dense.py) on an index built by bench/scale_bench.py.

    python bench/ann_bench.py convert SRC_WORKDIR DST_WORKDIR   # SRC_WORKDIR/index stays untouched
    python bench/ann_bench.py recall SRC_WORKDIR DST_WORKDIR [--nprobe 32 64 93 128]

convert copies SRC_WORKDIR/index and its queries.json to DST_WORKDIR, turns the copy's dense
index into the IVF one (FaissIndex.fit with the default DenseIndexConfig, exactly what the next
ingest into an old index does) and publishes it. recall searches the same queries (synthetic
query vectors, as scale_bench.py searches) in the flat index and the converted one: the share
of the exact top 10 and top 100 rows each nprobe finds, with and without an access-group mask,
the largest change of a row's score (float16), the time of one search (one thread), and how
often hybrid search (HybridSearcher, defaults) has the query's source chunk in its top 10. With
--nprobe equal to the number of lists the search is exhaustive: what is left is float16's doing. Then serve DST_WORKDIR/index as scale_bench.py does:

    python bench/scale_bench.py --serve DST_WORKDIR/index --chunks 100000 --minilm"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import emit, header
from scale_bench import BagProjectionEmbedder


def convert(src: Path, dst: Path) -> dict[str, Any]:
    from citekb.retrieval.store import IndexStore

    if dst.exists():
        sys.exit(f"{dst} exists; give a new folder")
    t = time.perf_counter()
    shutil.copytree(src / "index", dst / "index")
    shutil.copy(src / "queries.json", dst / "queries.json")
    store = IndexStore(dst / "index")
    snapshot = store.load()
    copy_s = time.perf_counter() - t
    t = time.perf_counter()
    snapshot.dense.fit()
    fit_s = time.perf_counter() - t
    with store.writer():
        store.publish(snapshot)
    return {"copy_and_load_s": round(copy_s, 1), "fit_s": round(fit_s, 1), "vectors": snapshot.dense.vector_count,
            "nlist": snapshot.dense.nlist, "nprobe": snapshot.dense.nprobe, "approximate": snapshot.dense.approximate}


def recall(src: Path, dst: Path, nprobes: list[int]) -> dict[str, Any]:
    import faiss
    from citekb.retrieval.config import DenseIndexConfig, RetrievalConfig
    from citekb.retrieval.search import HybridSearcher
    from citekb.retrieval.store import IndexStore

    faiss.omp_set_num_threads(1)
    flat = IndexStore(src / "index").load()
    ivf = IndexStore(dst / "index").load()
    if flat.dense.approximate or not ivf.dense.approximate:
        sys.exit("recall wants the flat index first and the converted (IVF) one second")
    queries = json.loads((src / "queries.json").read_text("utf-8"))
    embedder = BagProjectionEmbedder()
    vectors = [embedder.embed([q["query"]])[0] for q in queries]
    mask = flat.readable(frozenset({"staff"}))
    out: dict[str, Any] = {"vectors": ivf.dense.vector_count, "nlist": ivf.dense.nlist, "queries": len(queries),
                           "masked_share": round(float(mask.mean()), 3) if mask is not None else 1.0}
    truth = {(k, m is not None): [dict(flat.dense.search(v, k, m)) for v in vectors] for k in (10, 100) for m in (None, mask)}
    t = time.perf_counter()
    for v in vectors:
        flat.dense.search(v, 100)
    out["flat_ms"] = round((time.perf_counter() - t) * 1000 / len(vectors), 2)
    hybrid = HybridSearcher(embedder, RetrievalConfig())

    def gold(snapshot: Any) -> float:
        """Share of queries whose source chunk is in the hybrid top 10 (as scale_bench.py counts)."""
        return sum(any(h.chunk.chunk_id == q["chunk_id"] for h in hybrid.search(snapshot, q["query"], 10))
                   for q in queries) / len(queries)

    out["flat_hybrid_gold_in_top10"] = round(gold(flat), 3)
    del flat
    for nprobe in nprobes:
        ivf.dense.config = DenseIndexConfig(nprobe=nprobe)
        row: dict[str, Any] = {}
        for (k, masked), want in truth.items():
            got = [dict(ivf.dense.search(v, k, mask if masked else None)) for v in vectors]
            row[f"recall@{k}" + ("_masked" if masked else "")] = round(sum(len(g.keys() & w) for g, w in zip(got, want)) / sum(map(len, want)), 4)
            if (k, masked) == (100, False):  # float16 codes: how far a row's score moves
                row["max_score_error"] = float(max(abs(g[r] - w[r]) for g, w in zip(got, want) for r in g.keys() & w))
        t = time.perf_counter()
        for v in vectors:
            ivf.dense.search(v, 100)
        row["ms"] = round((time.perf_counter() - t) * 1000 / len(vectors), 2)
        row["hybrid_gold_in_top10"] = round(gold(ivf), 3)
        out[f"nprobe={nprobe}"] = row
        print(nprobe, row, file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["convert", "recall"])
    parser.add_argument("src", type=Path, help="a scale_bench.py workdir (index/ and queries.json), flat dense index")
    parser.add_argument("dst", type=Path, help="where the converted copy goes (convert) or is (recall)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 93, 128, 192])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result: dict[str, Any] = header()
    result.update(convert(args.src, args.dst) if args.command == "convert" else recall(args.src, args.dst, args.nprobe))
    emit(result, args.out)


if __name__ == "__main__":
    main()
