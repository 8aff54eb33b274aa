"""`citekb eval`: retrieval and answer quality on gold questions or a BEIR folder, several
configurations side by side."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from citekb.api.cli_support import guard, open_kb

DEFAULT_COMPARE = "hybrid"


@click.command("eval")
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--compare", "compare", default=None, metavar="CONFIGS",
              help="comma-separated configurations to run side by side: bm25, dense, hybrid, each optionally +rerank "
                   "(default: hybrid, or hybrid+rerank when CITEKB_RERANK is set)")
@click.option("--docs", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="documents the gold questions are about (default: docs/ beside QUESTIONS.jsonl, else its folder)")
@click.option("--index", type=click.Path(path_type=Path),
              help="evaluate this existing index instead of ingesting --docs into a temporary one; for a BEIR folder, "
                   "an index to build once and reuse on later runs")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 1000), help="hits per question (BEIR: 100)")
@click.option("--ask/--no-ask", default=True, show_default=True, help="also answer each gold question and score the answer")
@click.option("--limit", type=click.IntRange(1), help="evaluate only the first N questions")
@click.option("--every", default=1, show_default=True, type=click.IntRange(1),
              help="evaluate every N-th question only (a sample spread over the whole file)")
@click.option("--lang", help="gold questions of this language only (their \"lang\" field, e.g. zh)")
@click.option("--rerank-model", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="cross-encoder directory for +rerank (default: CITEKB_RERANK_MODEL)")
@click.option("--rerank-top-n", type=click.IntRange(1), help="candidates the reranker rescores (default: CITEKB_RERANK_TOP_N)")
@click.option("--rerank-mix", type=click.FloatRange(min=0), help="fused score + this x the scaled reranker score, "
              "instead of the reranker's order alone (default: CITEKB_RERANK_MIX)")
@click.option("--dense-units", type=click.Choice(["sentence", "chunk"]), default="chunk", show_default=True,
              help="BEIR only: one dense vector per sentence (as ingest does) or per chunk (faster to index)")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON on stdout")
@click.option("--progress/--no-progress", default=None, help="progress bars on stderr (default: when stderr is a terminal)")
@click.pass_context
@guard
def eval_cmd(ctx: click.Context, target: Path, compare: str | None, docs: Path | None, index: Path | None, k: int,
             ask: bool, limit: int | None, every: int, lang: str | None, rerank_model: Path | None,
             rerank_top_n: int | None, rerank_mix: float | None, dense_units: str, as_json: bool,
             progress: bool | None) -> None:
    """Measure search (hit@k, recall@k, MRR@10, nDCG@10 at page and chunk level), answers
    (cited-page accuracy, answer F1) and latency on TARGET: a QUESTIONS.jsonl of gold questions
    (fields id, lang, question, answers, gold locations) or a BEIR folder (corpus.jsonl,
    queries.jsonl, qrels/test.tsv)."""
    from citekb.api import evaluate as ev

    show = sys.stderr.isatty() if progress is None else progress
    with tempfile.TemporaryDirectory(prefix="citekb-eval-") as tmp:
        scratch = index is None or not (index / "CURRENT").exists()  # nothing to reuse: build it
        kb = open_kb(ctx, index if index is not None else Path(tmp) / "index", rerank_model=rerank_model,
                     rerank_top_n=rerank_top_n, rerank_mix=rerank_mix)
        names = ev.parse_configs(compare or ("hybrid+rerank" if kb.settings.rerank != "none" else DEFAULT_COMPARE))
        if any(n.endswith(ev.RERANK_SUFFIX) for n in names) and kb.settings.rerank_model is None:
            raise click.UsageError("+rerank needs a cross-encoder: --rerank-model DIR or CITEKB_RERANK_MODEL "
                                   "(`citekb train-reranker` makes one)")
        if target.is_dir():
            results = _beir(kb, target, names, index, scratch, dense_units, limit, every, show)
        else:
            results = _gold(kb, target, docs, names, scratch, k, ask, limit, every, lang, show)
    if as_json:
        click.echo(json.dumps(results, ensure_ascii=False, indent=1))
    else:
        _print(results)


def _reranker(kb: Any):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from citekb.retrieval.factory import make_reranker

    cfg = kb.settings.retrieval_config().rerank
    return lambda: make_reranker(replace(cfg, backend="cross-encoder"))


def _gold(kb: Any, target: Path, docs: Path | None, names: list[str], scratch: bool, k: int, ask: bool,
          limit: int | None, every: int, lang: str | None, show: bool) -> dict[str, Any]:
    from citekb.api import evaluate as ev
    from citekb.generation.factory import make_generator

    questions = [q for q in ev.load_gold(target) if lang is None or q.lang == lang][::every][:limit]
    if not questions:
        raise click.UsageError(f"{target} has no questions in language {lang!r}")
    if scratch:
        folder = docs or (target.parent / "docs" if (target.parent / "docs").is_dir() else target.parent)
        report = kb.ingest([folder], show_progress=show)
        if not report.ingested:
            raise click.UsageError(f"no documents could be indexed from {folder}; name the folder with --docs")
    snapshot = kb.snapshot()
    by_name = ev.searchers(names, kb.embedder, kb.settings.retrieval_config(), _reranker(kb))
    generator = make_generator(kb.settings.generation_config(), None, kb.embedder) if ask else None
    configs = ev.compare_gold(snapshot, questions, by_name, answer=generator.answer if generator else None, k=k,
                              ask_k=kb.settings.ask_k, show_progress=show)
    langs = sorted({q.lang for q in questions})
    return {"kind": "gold", "target": str(target), "questions": len(questions),
            "languages": {lang: sum(q.lang == lang for q in questions) for lang in langs},
            "documents": len(snapshot.documents), "chunks": len(snapshot.chunks), "k": k, "configs": configs}


def _beir(kb: Any, target: Path, names: list[str], index: Path | None, scratch: bool, dense_units: str,
          limit: int | None, every: int, show: bool) -> dict[str, Any]:
    from citekb.api import evaluate as ev

    beir = ev.load_beir(target)
    if limit or every > 1:
        beir = ev.BeirSet(beir.documents, dict(list(beir.queries.items())[::every][:limit]), beir.qrels)
    if scratch:
        snapshot = ev.build_snapshot(beir.documents, kb.embedder, kb.settings.ingest_config().chunking,
                                     dense_units=dense_units, show_progress=show)
        if index is not None:  # keep it: the next run over the same folder skips the embedding
            with kb.store.writer():
                kb.store.publish(snapshot)
    else:
        snapshot = kb.snapshot()
    by_name = ev.searchers(names, kb.embedder, kb.settings.retrieval_config(), _reranker(kb))
    configs = ev.compare_beir(snapshot, beir, by_name, show_progress=show)
    return {"kind": "beir", "target": str(target), "queries": len(beir.queries), "documents": len(snapshot.documents),
            "chunks": len(snapshot.chunks), "k": 100, "configs": configs}


def _print(results: dict[str, Any]) -> None:
    from citekb.api.evaluate import table

    configs = results["configs"]
    if results["kind"] == "gold":
        langs = ", ".join(f"{lang} {n}" for lang, n in results["languages"].items())
        click.echo(f"{results['questions']} questions ({langs}) over {results['documents']} documents, "
                   f"{results['chunks']} chunks; top {results['k']}")
        rows = table(configs, ("all", *results["languages"]))
    else:
        click.echo(f"{results['queries']} queries over {results['documents']} documents, {results['chunks']} chunks; top 100")
        rows = table(configs)
    width = max(len(label) for label, _ in rows)
    columns = [max(len(name), 6) for name in configs]
    click.echo(" " * width + "  " + "  ".join(name.rjust(w) for name, w in zip(configs, columns)))
    for label, values in rows:
        digits = 1 if "latency" in label else 3
        cells = ("-" if v is None else f"{v:.{digits}f}" for v in values)
        click.echo(label.ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, columns)))
    misses = {name: len(r.get("misses", [])) for name, r in configs.items() if "misses" in r}
    if misses:
        click.echo("questions with no page match in the top k: " + ", ".join(f"{n} {m}" for n, m in misses.items()))
