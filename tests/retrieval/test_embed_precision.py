"""The torch models' number format: bfloat16 embeddings of the real MiniLM are the float32 ones
to within rounding, so one index serves queries embedded either way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from citekb.ingest.errors import ModelError
from citekb.retrieval.embed import MINILM_ID, torch_dtype
from citekb.retrieval.factory import make_embedder


def test_precision_names_resolve_to_torch_types() -> None:
    assert torch_dtype("float32") is torch.float32
    assert torch_dtype("bfloat16") is torch.bfloat16
    assert torch_dtype("auto") in (torch.float32, torch.bfloat16)
    with pytest.raises(ModelError, match="unknown model precision 'half'"):
        torch_dtype("half")  # type: ignore[arg-type]


@pytest.mark.slow
def test_bfloat16_minilm_vectors_match_float32() -> None:
    texts = ["Employees receive 27 days of annual leave.", "Replace the pump filter every month.",
             "The warranty covers parts for 24 months after delivery, excluding wear items.", "Hello"]
    exact = make_embedder(MINILM_ID, "float32")
    fast = make_embedder(MINILM_ID, "bfloat16")
    a, b = exact.embed(texts), fast.embed(texts)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.999
    assert (a @ b.T).argmax(axis=1).tolist() == [0, 1, 2, 3]


@pytest.mark.slow
def test_batches_are_padded_to_16_tokens_without_changing_vectors() -> None:
    embedder = make_embedder(MINILM_ID, "float32")
    texts = ["Short.", "A somewhat longer sentence about the annual leave policy of the company.",
             "The pump filter must be replaced every month, or sooner when the pressure drops below two bar."]
    features = embedder._model.tokenize(texts)  # type: ignore[attr-defined]
    assert features["input_ids"].shape[1] % 16 == 0
    together = embedder.embed(texts)
    alone = np.concatenate([embedder.embed([t]) for t in texts])
    assert (together * alone).sum(axis=1).min() > 0.9999
