"""Training: loss falls in both stages, a seed makes runs identical, an interrupted run resumed
from its checkpoint ends where an uninterrupted one does, LoRA saves and loads adapters only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from citekb.generation.tinylm import train as train_module
from citekb.generation.tinylm.checkpoint import load_checkpoint, read_meta
from citekb.generation.tinylm.train import TrainCorpus, TrainReport, train
from citekb.ingest.errors import ConfigError

from tinylm_support import TINY


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_loss_falls_in_both_stages(trained: TrainReport) -> None:
    for stage in ("pretrain", "sft"):
        losses = trained.stages[stage].losses
        assert len(losses) == getattr(TINY, f"{stage}_steps")
        assert _mean(losses[-4:]) < _mean(losses[:4]) - 0.2, (stage, losses)
    assert trained.examples > 50
    assert read_meta(trained.out_dir)["stage"] == "done"
    assert not (trained.out_dir / train_module.STATE_FILE).exists()


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def test_same_seed_same_weights_and_resume_after_interruption(sample_corpus: TrainCorpus, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = dataclasses.replace(TINY, pretrain_steps=4, sft_steps=8, checkpoint_every=3)
    train(cfg, sample_corpus, tmp_path / "a")
    train(cfg, sample_corpus, tmp_path / "b")
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)

    real_batch = train_module.sft_batch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:  # SFT step 5: its last checkpoint is the one after step 3
            raise KeyboardInterrupt
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(train_module, "sft_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, sample_corpus, tmp_path / "c")
    meta = read_meta(tmp_path / "c")
    assert (meta["stage"], meta["step"]) == ("sft", 3)
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, sample_corpus, tmp_path / "c")
    monkeypatch.setattr(train_module, "sft_batch", real_batch)
    report = train(cfg, sample_corpus, tmp_path / "c", resume=True)
    assert report.resumed and report.stages["sft"].steps == 5  # steps 4..8
    c = _weights(tmp_path / "c")
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_lora_saves_adapters_only_and_they_load_onto_the_base(trained: TrainReport, sample_corpus: TrainCorpus,
                                                              tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, lora=True, sft_steps=6, lora_lr=5e-3)
    report = train(cfg, sample_corpus, tmp_path / "adapter", base=trained.out_dir)
    assert list(report.stages) == ["sft"]
    files = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "config.json", "tokenizer.model"} <= files
    assert "model.safetensors" not in files
    adapter = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert adapter and all("lora_" in name for name in adapter)
    base = load_checkpoint(trained.out_dir)
    adapted = load_checkpoint(tmp_path / "adapter")
    ids = torch.tensor([base.tokenizer.encode("How many days of paid annual leave?")])
    assert not torch.allclose(base.model(ids)[0], adapted.model(ids)[0])  # the adapters changed it
    again = load_checkpoint(tmp_path / "adapter")
    assert torch.equal(adapted.model(ids)[0], again.model(ids)[0])
    assert type(adapted.model).__name__ == "TinyLM"  # merged: a plain TinyLM again


def test_lora_without_base_is_refused(sample_corpus: TrainCorpus, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base"):
        train(dataclasses.replace(TINY, lora=True), sample_corpus, tmp_path / "x")


def test_copy_loss_is_over_the_evidence_tokens_only(trained: TrainReport, sample_corpus: TrainCorpus) -> None:
    import random

    from citekb.generation.tinylm.data import grounded_examples, sft_batch

    checkpoint = load_checkpoint(trained.out_dir)
    tok, model = checkpoint.tokenizer, checkpoint.model
    examples = grounded_examples(tok, sample_corpus.chunks[:6], sample_corpus.search, passages=3, sentences=3,
                                 sentence_tokens=48, seq_len=256, per_sentence=2, max_examples=40, seed=1)
    x, y, flags, candidates = sft_batch(examples, 6, tok.pad, random.Random(0), vocab_size=tok.vocab_size,
                                        sep=tok.sep, eos=tok.eos)
    assert candidates is not None and candidates.shape == (6, tok.vocab_size)
    for row in range(6):
        answer = y[row][y[row] != -100]
        assert bool(candidates[row, answer].all()) and bool(candidates[row, tok.eos])
        sep = x[row].tolist().index(tok.sep)
        context = set(x[row, sep + 1:].tolist())
        assert set(candidates[row].nonzero()[:, 0].tolist()) <= context | {tok.eos}
        assert not candidates[row, tok.user]  # the question's part of the prompt is not quoted from
    with torch.no_grad():
        _, full, _ = model(x, y, flags=flags)
        _, copying, _ = model(x, y, flags=flags, candidates=candidates)
    assert full is not None and copying is not None and float(copying) < float(full)
