"""`citekb train`: train the TinyLM answer model on the indexed corpus (or adapt one with LoRA)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from citekb.api.cli_support import INDEX_HELP, guard, open_kb

EXTRA_SUFFIXES = (".txt", ".md", ".markdown")


@click.command("train")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="checkpoint directory to write (model.safetensors, config.json, tokenizer.model)")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--extra", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="a folder of extra .txt/.md text for pretraining")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), help="time budget for the whole run")
@click.option("--size", type=click.Choice(["tiny", "mini", "small", "medium", "large"]), default="tiny", show_default=True,
              help="model size: tiny 0.6M parameters, mini 1.9M, small 5.3M, large 8 layers x 512")
@click.option("--vocab-size", type=click.IntRange(64), default=8000, show_default=True)
@click.option("--pretrain-steps", type=click.IntRange(0), default=1500, show_default=True)
@click.option("--sft-steps", type=click.IntRange(0), default=40000, show_default=True,
              help="at most this many QA steps (with --minutes, time usually ends the stage first)")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(0), default=0, help="torch threads (default: half the cores)")
@click.option("--resume", is_flag=True, help="carry on an interrupted run in --out from its last checkpoint")
@click.option("--base", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="with --lora: the trained checkpoint to adapt to this index")
@click.option("--lora", is_flag=True, help="fine-tune LoRA adapters of --base on this index; save the adapters only")
@click.option("--progress/--no-progress", default=None, help="progress bar on stderr (default: when stderr is a terminal)")
@click.option("--json", "as_json", is_flag=True, help="print the training report as JSON on stdout")
@click.pass_context
@guard
def train(ctx: click.Context, out_dir: Path, index: Path | None, extra: Path | None, minutes: float | None, size: str,
          vocab_size: int, pretrain_steps: int, sft_steps: int, batch_size: int, seed: int, threads: int, resume: bool,
          base: Path | None, lora: bool, progress: bool | None, as_json: bool) -> None:
    """Train the TinyLM answer model on the indexed documents: pretraining on their text, then
    grounded question answering built from them. Use it with `citekb ask --backend tinyllm --model OUT`."""
    from citekb.generation.tinylm.data import keyword_search
    from citekb.generation.tinylm.train import TrainConfig, TrainCorpus
    from citekb.generation.tinylm.train import train as run_training

    if lora != (base is not None):
        raise click.UsageError("--lora and --base go together: LoRA adapts a trained base checkpoint")
    cfg = TrainConfig(size=size, vocab_size=vocab_size, pretrain_steps=pretrain_steps, sft_steps=sft_steps,
                      batch_size=batch_size, seed=seed, threads=threads, minutes=minutes, lora=lora)
    kb = open_kb(ctx, index)
    extra_texts = [p.read_text("utf-8", errors="replace") for p in sorted(extra.rglob("*"))
                   if p.is_file() and p.suffix.lower() in EXTRA_SUFFIXES] if extra is not None else []
    snapshot = kb.snapshot()
    corpus = TrainCorpus(chunks=snapshot.chunks, search=keyword_search(snapshot.chunks, snapshot.keyword),
                         extra_texts=extra_texts)
    report = run_training(cfg, corpus, out_dir, base=base, resume=resume,
                          show_progress=sys.stderr.isatty() if progress is None else progress)
    stages = {name: {"steps": s.steps, "tokens": s.tokens, "seconds": round(s.seconds, 1),
                     "tokens_per_s": round(s.tokens_per_s, 1),
                     "first_loss": round(s.losses[0], 4) if s.losses else None,
                     "last_loss": round(sum(s.losses[-20:]) / len(s.losses[-20:]), 4) if s.losses else None}
              for name, s in report.stages.items()}
    if as_json:
        click.echo(json.dumps({"out": str(report.out_dir), "params": report.params, "vocab_size": report.vocab_size,
                               "examples": report.examples, "resumed": report.resumed, "stages": stages}, indent=1))
        return
    click.echo(f"trained {report.params / 1e6:.2f}M parameters (vocab {report.vocab_size}) on {report.examples} "
               f"grounded QA examples into {report.out_dir}")
    for name, s in stages.items():
        click.echo(f"  {name}: {s['steps']} steps, {s['tokens_per_s']} tokens/s, loss {s['first_loss']} -> {s['last_loss']}")
