"""Settings shared by the TinyLM tests: a model small enough to train in seconds."""

from __future__ import annotations

from pathlib import Path

from citekb.generation.tinylm.train import TrainConfig

SAMPLE_DOCS = Path(__file__).resolve().parents[3] / "sample_docs"
HASH_MODEL = "test/hash-embedder"
TINY = TrainConfig(size="tiny", vocab_size=1000, seq_len=256, batch_size=8, pretrain_steps=12, sft_steps=20,
                   passage_tokens=48, checkpoint_every=5, threads=1, seed=7, warmup_steps=2)
