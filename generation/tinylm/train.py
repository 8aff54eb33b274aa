"""Training TinyLM on a knowledge base, for `citekb train` and the tests.

Stage 1 ("pretrain") is next-token prediction on the corpus text. Stage 2 ("sft") is grounded
QA (see data.py) with the loss on the answer tokens only. With a base checkpoint and lora=True,
only stage 2 runs, on LoRA adapters of the base (peft), and only the adapters are saved.

Runs are deterministic for a seed: each step's batch comes from its own RNG seeded by (seed,
stage, step), so a run resumed from its last checkpoint draws the same batches it would have."""

from __future__ import annotations

import logging
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from citekb.ingest.document import Chunk
from citekb.ingest.errors import ConfigError, ModelError

from .checkpoint import load_checkpoint, read_meta, save_adapter, save_checkpoint
from .data import Search, SftExample, grounded_examples, lm_batch, sft_batch, token_stream
from .model import SIZES, TinyLM
from .tokenizer import MAX_MARKERS, TinyTokenizer

log = logging.getLogger(__name__)

STAGES = ("pretrain", "sft")
STATE_FILE = "train_state.pt"  # optimizer, stage, step: what a resume needs beyond the weights
DATA_FILE = "train_data.pt"  # the prepared token stream and QA examples, so a resume reuses them
LORA_TARGETS = ["wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    size: str = "tiny"  # a key of model.SIZES; tiny reached the best answers in 20 contended minutes (docs/benchmarks.md)
    vocab_size: int = 8000
    seq_len: int = 512  # the model's context; QA prompts use about 4 x 30 + 30 tokens
    batch_size: int = 8
    pretrain_steps: int = 1500  # upper bounds; with minutes, time may end a stage first
    sft_steps: int = 40000
    minutes: float | None = None  # whole-run budget, data preparation included
    # Of a --minutes budget, for stage 1. 0: QA only. On the 2-core machine 15% of 20 minutes bought
    # 21-42 pretraining steps of 8 x 512 tokens (loss 9.0 -> 8.1-8.6), time the QA stage uses better.
    pretrain_share: float = 0.0
    lr: float = 2e-3
    sft_lr: float = 3e-3  # tiny, 20 contended minutes: answer loss 3.61 after 5,025 steps against 4.09 after 3,002 at 1e-3
    lora_lr: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.05
    passages: int = 3  # hits per QA prompt (the true chunk among passages-1 others), as extractive's top_chunks
    sentences: int = 3  # evidence sentences of those hits in the prompt: short prompts train faster
    passage_tokens: int = 48  # at most, per evidence sentence
    per_sentence: int = 3  # questions synthesised per sentence
    max_examples: int = 40000
    seed: int = 0
    checkpoint_every: int = 500  # steps
    # torch threads; 0: half the cores. On a shared 2-core machine one thread trained 5x faster
    # than two (1,820 vs 360 tokens/s): two OpenMP threads spin-wait on a busy core.
    threads: int = 0
    lora: bool = False
    lora_rank: int = 8
    match_feature: bool = True  # model.TinyLMConfig.match_feature: flag context words the question has
    # QA loss over the tokens the prompt's evidence holds (and <eos>) only, as copy-constrained
    # decoding chooses: the model learns which of them, not first to avoid the rest of the vocabulary.
    copy_loss: bool = True

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError(f"unknown TinyLM size {self.size!r}; choose one of {sorted(SIZES)}")
        if self.minutes is not None and self.minutes <= 0:
            raise ConfigError("--minutes must be positive")
        if min(self.batch_size, self.seq_len, self.passages, self.sentences, self.passage_tokens, self.checkpoint_every) < 1:
            raise ConfigError("batch_size, seq_len, passages, sentences, passage_tokens and checkpoint_every must be positive")
        if self.passages > MAX_MARKERS:
            raise ConfigError(f"passages must be at most {MAX_MARKERS}")
        if self.pretrain_steps < 0 or self.sft_steps < 0 or not 0 <= self.pretrain_share <= 1:
            raise ConfigError("step counts must be >= 0 and pretrain_share in [0, 1]")
        if self.sentences * (self.passage_tokens + 1) + 64 > self.seq_len:
            raise ConfigError(f"{self.sentences} sentences of {self.passage_tokens} tokens do not fit seq_len {self.seq_len}")


@dataclass(frozen=True, slots=True)
class TrainCorpus:
    chunks: Sequence[Chunk]  # the indexed corpus
    search: Search  # for distractor passages: the knowledge base's own search
    extra_texts: Sequence[str] = ()  # more text for stage 1 only


@dataclass
class StageReport:
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


@dataclass
class TrainReport:
    out_dir: Path
    params: int
    vocab_size: int
    examples: int
    stages: dict[str, StageReport]
    resumed: bool = False


def train(cfg: TrainConfig, corpus: TrainCorpus, out_dir: Path, *, base: Path | None = None, resume: bool = False,
          show_progress: bool = False) -> TrainReport:
    """Train (or, with resume, carry on training) a TinyLM into out_dir; the checkpoint there
    is loadable at every moment after the first save."""
    if cfg.lora and base is None:
        raise ConfigError("LoRA fine-tuning needs a base model (--base DIR)")
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 2) // 2))
    started = time.monotonic()
    state: dict[str, Any] | None = None
    if resume:
        if not (out_dir / STATE_FILE).is_file():
            raise ModelError(f"nothing to resume in {out_dir}: no {STATE_FILE}")
        state = torch.load(out_dir / STATE_FILE, weights_only=False)
        started -= state["elapsed_s"]
    elif (out_dir / STATE_FILE).is_file():
        raise ConfigError(f"{out_dir} holds a training run; pass --resume to carry on, or choose another folder")

    torch.manual_seed(cfg.seed)
    if base is not None:
        loaded = load_checkpoint(base)
        model, tokenizer = loaded.model, loaded.tokenizer
        if loaded.meta["kind"] != "tinylm":
            raise ModelError(f"base {base} is itself an adapter; give the full checkpoint it adapts")
    elif state is not None:
        loaded = load_checkpoint(out_dir)
        model, tokenizer = loaded.model, loaded.tokenizer
    else:
        texts = [c.text for c in corpus.chunks] + list(corpus.extra_texts)
        tokenizer = TinyTokenizer.train(texts, cfg.vocab_size)
        model = TinyLM(replace(SIZES[cfg.size], vocab_size=tokenizer.vocab_size, max_seq_len=cfg.seq_len,
                               match_feature=cfg.match_feature))
    if model.cfg.max_seq_len < cfg.seq_len:
        cfg = replace(cfg, seq_len=model.cfg.max_seq_len)

    if state is not None and (out_dir / DATA_FILE).is_file():
        data = torch.load(out_dir / DATA_FILE, weights_only=False)
        stream, examples = data["stream"], [SftExample(tuple(t), n, tuple(f)) for t, n, f in data["sft"]]
    else:
        if not corpus.chunks:
            raise ConfigError("cannot train: the index has no chunks; ingest documents first")
        stream = token_stream(tokenizer, [c.text for c in corpus.chunks] + list(corpus.extra_texts))
        examples = grounded_examples(tokenizer, corpus.chunks, corpus.search, passages=cfg.passages,
                                     sentences=cfg.sentences, sentence_tokens=cfg.passage_tokens, seq_len=cfg.seq_len,
                                     per_sentence=cfg.per_sentence, max_examples=cfg.max_examples, seed=cfg.seed,
                                     show_progress=show_progress)
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"stream": stream, "sft": [(list(e.tokens), e.prompt_len, list(e.flags)) for e in examples]},
                   out_dir / DATA_FILE)
    if not examples:
        raise ConfigError("cannot train: no grounded QA examples could be made from the corpus")
    log.info("train params=%d vocab=%d stream_tokens=%d examples=%d", model.num_params(), tokenizer.vocab_size,
             len(stream), len(examples))

    trainable: torch.nn.Module = model
    if cfg.lora:
        from peft import LoraConfig, PeftModel, get_peft_model

        assert base is not None
        if state is not None:
            trainable = PeftModel.from_pretrained(model, str(out_dir), is_trainable=True)
        else:
            trainable = get_peft_model(model, LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank,
                                                         target_modules=LORA_TARGETS, lora_dropout=0.0))
    stages = ("sft",) if cfg.lora else STAGES
    reports = {s: StageReport() for s in stages}
    first_stage = stages.index(state["stage"]) if state is not None else 0
    for index, stage in enumerate(stages):
        if index < first_stage:
            continue
        steps = cfg.sft_steps if stage == "sft" else cfg.pretrain_steps
        budget_end = None
        if cfg.minutes is not None:
            share = 1.0 if stage == "sft" or cfg.lora else cfg.pretrain_share
            budget_end = started + 60 * cfg.minutes * share
        resume_state = state if state is not None and index == first_stage else None
        _run_stage(stage, trainable, model, tokenizer, stream, examples, cfg, steps, budget_end, out_dir, reports[stage],
                   resume_state, started, base, show_progress)
    (out_dir / STATE_FILE).unlink(missing_ok=True)
    (out_dir / DATA_FILE).unlink(missing_ok=True)
    return TrainReport(out_dir, model.num_params(), tokenizer.vocab_size, len(examples), reports, resumed=state is not None)


def _run_stage(stage: str, trainable: torch.nn.Module, model: TinyLM, tokenizer: TinyTokenizer, stream: torch.Tensor,
               examples: Sequence[SftExample], cfg: TrainConfig, steps: int, budget_end: float | None, out_dir: Path,
               report: StageReport, state: dict[str, Any] | None, started: float, base: Path | None,
               show_progress: bool) -> None:
    lr = cfg.lora_lr if cfg.lora else cfg.sft_lr if stage == "sft" else cfg.lr
    params = [p for p in trainable.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.95))
    step = 0
    if state is not None:
        if state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        report.losses = list(state["losses"])
    stage_started = time.monotonic()
    stage_budget = None if budget_end is None else max(budget_end - stage_started, 1e-9)
    trainable.train()
    bar = tqdm(total=steps, initial=step, desc=stage, unit="step", disable=not show_progress, file=sys.stderr, leave=False)
    try:
        while step < steps:
            now = time.monotonic()
            if budget_end is not None and now >= budget_end:
                log.info("stage=%s time budget reached at step=%d", stage, step)
                break
            progress = step / steps
            if stage_budget is not None:
                progress = max(progress, (now - stage_started) / stage_budget)
            for group in optimizer.param_groups:
                group["lr"] = _lr(lr, step, cfg.warmup_steps, progress)
            rng = random.Random(f"{cfg.seed}:{stage}:{step}")
            if stage == "sft":
                x, y, flags, candidates = sft_batch(examples, cfg.batch_size, tokenizer.pad, rng,
                                                    vocab_size=tokenizer.vocab_size if cfg.copy_loss else 0,
                                                    sep=tokenizer.sep, eos=tokenizer.eos)
            else:
                x, y, flags, candidates = lm_batch(stream, cfg.batch_size, cfg.seq_len, rng)
            _, loss, _ = trainable(x, y, flags=flags, candidates=candidates)
            assert loss is not None
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            step += 1
            report.steps += 1
            report.tokens += x.numel()
            report.losses.append(loss.item())
            elapsed = time.monotonic() - stage_started
            bar.update(1)
            bar.set_postfix(loss=f"{report.losses[-1]:.3f}", tok_s=f"{report.tokens / max(elapsed, 1e-9):.0f}")
            if step % cfg.checkpoint_every == 0 and step < steps:
                _save(trainable, model, tokenizer, cfg, stage, step, optimizer, report, started, out_dir, base)
    finally:
        bar.close()
        report.seconds += time.monotonic() - stage_started
    next_stage = STAGES[STAGES.index(stage) + 1] if stage != STAGES[-1] else None
    # The stage is done: the checkpoint records the next one, at step 0, with a fresh optimizer.
    _save(trainable, model, tokenizer, cfg, next_stage or stage, 0 if next_stage else step, None, report, started,
          out_dir, base, done=next_stage is None)


def _lr(peak: float, step: int, warmup: int, progress: float) -> float:
    """Linear warm-up, then cosine decay to a tenth of peak as progress goes from 0 to 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _save(trainable: torch.nn.Module, model: TinyLM, tokenizer: TinyTokenizer, cfg: TrainConfig, stage: str, step: int,
          optimizer: torch.optim.Optimizer | None, report: StageReport, started: float, out_dir: Path,
          base: Path | None, done: bool = False) -> None:
    meta = {"train": asdict(cfg), "stage": "done" if done else stage, "step": step}
    if cfg.lora:
        assert base is not None
        save_adapter(out_dir, trainable, tokenizer, base, **meta)
    else:
        save_checkpoint(out_dir, model, tokenizer, **meta)
    state = {"stage": stage, "step": step, "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "elapsed_s": time.monotonic() - started, "losses": report.losses if optimizer is not None else []}
    tmp = out_dir / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out_dir / STATE_FILE)


def resumable(out_dir: Path) -> bool:
    """Does out_dir hold an interrupted run that train(..., resume=True) can carry on?"""
    return (out_dir / STATE_FILE).is_file() and read_meta(out_dir)["stage"] != "done"
