"""`citekb train-reranker`: fine-tune a cross-encoder on the indexed documents, on this CPU."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click
from citekb.api.cli_support import INDEX_HELP, guard, open_kb


@click.command("train-reranker")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--minutes", default=15.0, show_default=True, type=click.FloatRange(min=0.05),
              help="time budget for training (mining questions and saving come on top)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--max-queries", default=4000, show_default=True, type=click.IntRange(1),
              help="synthetic questions to mine from the indexed text")
@click.option("--negatives", default=3, show_default=True, type=click.IntRange(1, 15), help="hard negatives per question")
@click.option("--base", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="BERT checkpoint to start from (default: the packaged all-MiniLM-L6-v2 weights)")
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
              help="torch threads (0: one per core); 1 is much faster on a machine other jobs keep busy")
@click.option("--json", "as_json", is_flag=True, help="print the training report as JSON on stdout")
@click.option("--progress/--no-progress", default=None, help="progress bars on stderr (default: when stderr is a terminal)")
@click.pass_context
@guard
def train_reranker(ctx: click.Context, out_dir: Path, index: Path | None, minutes: float, seed: int, max_queries: int,
                   negatives: int, base: Path | None, threads: int, as_json: bool, progress: bool | None) -> None:
    """Train a cross-encoder reranker on synthetic questions mined from the indexed documents
    (their sentences and headings; hard negatives from BM25 and dense search) and save it to
    OUT_DIR. Use it with CITEKB_RERANK=cross-encoder CITEKB_RERANK_MODEL=OUT_DIR."""
    from citekb.retrieval.embed import minilm_path
    from citekb.retrieval.reranker_training import TrainingConfig, mine_examples
    from citekb.retrieval.reranker_training import train_reranker as train

    show = sys.stderr.isatty() if progress is None else progress
    cfg = TrainingConfig(minutes=minutes, seed=seed, max_queries=max_queries, negatives=negatives, threads=threads)
    kb = open_kb(ctx, index)
    snapshot = kb.snapshot()
    started = time.monotonic()
    examples = mine_examples(snapshot, kb.embedder, cfg, show_progress=show)
    report = train(examples, base or minilm_path(), out_dir, cfg, show_progress=show,
                   mining_seconds=time.monotonic() - started)
    if as_json:
        click.echo(json.dumps(asdict(report), indent=1, default=str))
        return
    budget = " (stopped by the time budget)" if report.stopped_by_budget else ""
    click.echo(f"trained on {report.examples} synthetic questions from {len(snapshot.chunks)} chunks: "
               f"{report.steps} steps in {report.seconds:.0f} s{budget}, mining {report.mining_seconds:.0f} s")
    click.echo(f"held-out synthetic questions ranked first: {report.dev_accuracy:.3f} "
               f"(untrained {report.dev_accuracy_before:.3f}, chance {1 / (1 + negatives):.3f})")
    click.echo(f"saved to {out_dir}; use it with CITEKB_RERANK=cross-encoder CITEKB_RERANK_MODEL={out_dir}")
