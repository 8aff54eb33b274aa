"""TinyLM model and checkpoints: KV-cache generation equals full recomputation, sampling
options, save -> load round trips the logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from citekb.generation.tinylm.checkpoint import load_checkpoint, save_checkpoint
from citekb.generation.tinylm.model import SIZES, TinyLM, TinyLMConfig
from citekb.generation.tinylm.train import TrainReport
from citekb.ingest.errors import ConfigError, ModelError


def test_default_size_is_about_five_million_parameters_and_large_is_8x512() -> None:
    small = TinyLM(SIZES["small"])
    assert 4.5e6 < small.num_params() < 6e6
    large = SIZES["large"]
    assert (large.n_layer, large.dim, large.n_head, large.ffn_dim) == (8, 512, 8, 2048)


def test_kv_cache_logits_and_tokens_equal_full_recomputation() -> None:
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(vocab_size=97, n_layer=2, n_head=2, dim=32, ffn_dim=64, max_seq_len=64,
                                match_feature=True)).eval()
    tokens = torch.randint(0, 97, (1, 20))
    flags = torch.randint(0, 2, (1, 20))
    full, _, _ = model(tokens, flags=flags)
    assert not torch.allclose(full, model(tokens)[0])  # the match flags count
    _, _, cache = model(tokens[:, :12], flags=flags[:, :12])
    step_logits = []
    for i in range(12, 20):
        logits, _, cache = model(tokens[:, i:i + 1], cache=cache, start=i, flags=flags[:, i:i + 1])
        step_logits.append(logits[0, -1])
    assert torch.allclose(torch.stack(step_logits), full[0, 12:20], atol=1e-5)
    # Sampled with the same generator state, the cached and uncached paths pick the same tokens.
    prompt, marks = tokens[0, :6].tolist(), flags[0, :6].tolist()
    for kwargs in ({}, {"temperature": 0.9, "top_k": 20, "top_p": 0.9}):
        cached = list(model.generate(prompt, 30, generator=torch.Generator().manual_seed(1), flags=marks, **kwargs))
        uncached = list(model.generate(prompt, 30, use_cache=False, generator=torch.Generator().manual_seed(1), flags=marks,
                                       **kwargs))
        assert cached == uncached and len(cached) == 30


def test_top_k_one_is_greedy_and_bad_sampling_settings_are_refused() -> None:
    torch.manual_seed(1)
    model = TinyLM(TinyLMConfig(vocab_size=50, n_layer=1, n_head=2, dim=16, ffn_dim=32, max_seq_len=40))
    greedy = list(model.generate([1, 2, 3], 10))
    assert list(model.generate([1, 2, 3], 10, temperature=2.0, top_k=1)) == greedy
    with pytest.raises(ConfigError):
        list(model.generate([1, 2, 3], 5, top_p=0.0))


def test_save_then_load_gives_the_same_logits(trained: TrainReport, tmp_path: Path) -> None:
    first = load_checkpoint(trained.out_dir)
    save_checkpoint(tmp_path / "copy", first.model, first.tokenizer, stage="done")
    second = load_checkpoint(tmp_path / "copy")
    ids = torch.tensor([first.tokenizer.encode("Employees receive paid annual leave every year.")])
    assert torch.equal(first.model(ids)[0], second.model(ids)[0])
    assert second.tokenizer.proto == first.tokenizer.proto
    assert second.model.cfg == first.model.cfg
    # ...and they are the trained weights, not a fresh model's.
    torch.manual_seed(0)
    assert not torch.allclose(TinyLM(first.model.cfg)(ids)[0], first.model(ids)[0])


def test_missing_or_foreign_checkpoint_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no TinyLM checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text('{"format": 1, "kind": "something-else"}')
    with pytest.raises(ModelError, match="not a TinyLM checkpoint"):
        load_checkpoint(tmp_path)


def test_scored_continuations_equal_full_recomputation() -> None:
    from citekb.generation.tinylm.model import score_continuations

    torch.manual_seed(2)
    model = TinyLM(TinyLMConfig(vocab_size=60, n_layer=2, n_head=2, dim=32, ffn_dim=64, max_seq_len=64,
                                match_feature=True)).eval()
    prompt, flags = [5, 9, 11, 3, 7, 22], [0, 0, 1, 0, 1, 0]
    options = [[4], [8, 9, 10], [12, 13]]
    candidates = [4, 8, 9, 10, 12, 13, 30]
    scores = score_continuations(model, prompt, options, flags=flags, candidates=candidates)
    for option, score in zip(options, scores):
        ids = torch.tensor([prompt + option])
        with torch.no_grad():
            logits = model(ids, flags=torch.tensor([flags + [0] * len(option)]))[0][0]
        mask = torch.full((60,), float("-inf"))
        mask[candidates] = 0.0
        logp = (logits + mask).log_softmax(-1)
        expected = sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(option))
        assert abs(score - expected) < 1e-4, (option, score, expected)
    assert all(s < 0 for s in scores)
