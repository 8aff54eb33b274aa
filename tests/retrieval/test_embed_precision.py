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
def test_batches_hold_texts_of_about_as_many_tokens_without_changing_vectors() -> None:
    """Texts go to the model longest first in batches within the token budget: a Chinese
    sentence (a token per character) is not batched with English ones of as many characters,
    and each vector is what the text gets embedded alone, in the order given."""
    embedder = make_embedder(MINILM_ID, "float32")
    embedder._batch_size, embedder._batch_tokens = 4, 64  # type: ignore[attr-defined]
    texts = ["Short.", "由于降雨量大，该地区的河流在夏季经常泛滥，居民必须提前撤离到安全的地方。",
             "A somewhat longer sentence about the annual leave policy of the company.",
             "The pump filter must be replaced every month, or sooner when the pressure drops below two bar.",
             "Ok.", "Leave is 27 days."]
    sizes: list[int] = []
    lengths: list[list[int]] = []
    encode = embedder._model.encode  # type: ignore[attr-defined]

    def recording(batch, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        lengths.append([len(embedder._model.tokenizer(t)["input_ids"]) for t in batch])  # type: ignore[attr-defined]
        return encode(batch, **kwargs)

    embedder._model.encode = recording  # type: ignore[attr-defined]
    together = embedder.embed(texts)
    firsts = [batch[0] for batch in lengths]
    assert firsts == sorted(firsts, reverse=True)  # longest first
    assert all(len(batch) * batch[0] <= 64 or len(batch) == 1 for batch in lengths) and max(sizes) <= 4
    alone = np.concatenate([encode([t], convert_to_tensor=True).float().numpy() for t in texts])
    alone /= np.linalg.norm(alone, axis=1, keepdims=True)
    assert (together * alone).sum(axis=1).min() > 0.9999
