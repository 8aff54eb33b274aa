"""Rerankers rescore the fused candidates with a model that reads query and passage together.

A cross-encoder costs time in proportion to the tokens it reads, so a model trained by
`citekb train-reranker` reads, of each chunk, only the window of sentences around the one that
shares most terms with the query (about 80 tokens, its heading path first), and reads it the
same way in training and in search. The window size travels with the model, in
citekb_reranker.json beside its weights; a model without that file reads whole chunks."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from citekb.ingest.document import Chunk
from citekb.ingest.errors import ModelError
from citekb.ingest.sentences import split_sentences

from .analyze import analyze
from .config import RerankConfig
from .embed import Precision, torch_dtype
from .hit import Hit

TRAINING_FILE = "citekb_reranker.json"  # how the model was trained; the window it expects
_TOKENS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+")


def token_estimate(text: str) -> int:
    """About how many word pieces a BERT tokenizer makes of text: a word or a CJK character each."""
    return len(_TOKENS.findall(text))


@lru_cache(maxsize=8192)
def _sentences(text: str) -> tuple[tuple[str, frozenset[str], int], ...]:
    """Each sentence of a chunk with its analyzed terms and size, computed once per chunk text."""
    return tuple((text[a:b], frozenset(analyze(text[a:b])), token_estimate(text[a:b])) for a, b in split_sentences(text))


def passage_window(query_terms: frozenset[str], chunk: Chunk, tokens: int) -> str:
    """The chunk's heading path, then the sentence sharing most terms with the query, widened by
    its neighbours (after, then before) while the window stays within about `tokens`."""
    sentences = _sentences(chunk.text)
    if not sentences:
        return chunk.text
    best = max(range(len(sentences)), key=lambda i: (len(sentences[i][1] & query_terms), -i))
    start, stop, size = best, best + 1, sentences[best][2]
    grew = True
    while grew:
        grew = False
        if stop < len(sentences) and size + sentences[stop][2] <= tokens:
            size, stop, grew = size + sentences[stop][2], stop + 1, True
        if start > 0 and size + sentences[start - 1][2] <= tokens:
            size, start, grew = size + sentences[start - 1][2], start - 1, True
    window = " ".join(text for text, _, _ in sentences[start:stop])
    section = chunk.locator.section_path
    return f"{section}: {window}" if section else window


class Reranker(Protocol):
    name: str

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        """At most k hits, best first; each keeps its earlier scores and gains scores["rerank"]."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder from a local model directory."""

    name = "cross-encoder"

    def __init__(self, model_dir: Path, batch_size: int = 32, mix: float | None = None, precision: Precision = "auto") -> None:
        if not model_dir.is_dir() or not (model_dir / "config.json").is_file():
            raise ModelError(f"no reranker model in {model_dir}: expected a local model directory with config.json")
        os.environ["HF_HUB_OFFLINE"] = "1"  # a local directory only; never a hub download
        from sentence_transformers import CrossEncoder

        try:
            self._model = CrossEncoder(str(model_dir), device="cpu", local_files_only=True)
        except Exception as exc:  # a damaged directory raises anything from OSError to safetensors errors
            raise ModelError(f"cannot load reranker model from {model_dir}: {exc}") from exc
        self._model.model.to(torch_dtype(precision))
        self._batch_size = batch_size
        self.mix = mix
        self.window_tokens = read_training(model_dir).get("passage_tokens")  # None: whole chunks

    @classmethod
    def from_config(cls, cfg: RerankConfig) -> CrossEncoderReranker:
        if cfg.model_dir is None:
            raise ModelError("the cross-encoder reranker needs a model directory (rerank model_dir)")
        return cls(Path(cfg.model_dir), batch_size=cfg.batch_size, mix=cfg.mix, precision=cfg.precision)

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        if not hits:
            return []
        scores = self._model.predict([(query, p) for p in self.passages(query, [h.chunk for h in hits])],
                                     batch_size=self._batch_size, show_progress_bar=False, convert_to_numpy=True)
        final = [float(s) for s in scores] if self.mix is None else mixed([h.score for h in hits], [float(s) for s in scores], self.mix)
        rescored = [replace(h, score=f, scores={**h.scores, "rerank": float(s)}) for h, s, f in zip(hits, scores, final)]
        rescored.sort(key=lambda h: -h.score)
        return rescored[:k]

    def passages(self, query: str, chunks: Sequence[Chunk]) -> list[str]:
        """What the model reads of each chunk: its window for this query, or the whole chunk."""
        if not self.window_tokens:
            return [c.text for c in chunks]
        terms = frozenset(analyze(query))
        return [passage_window(terms, c, int(self.window_tokens)) for c in chunks]


def mixed(fused: Sequence[float], rerank: Sequence[float], weight: float) -> list[float]:
    """fused / best fused + weight * rerank min-max scaled to [0, 1] (all 0 when every rerank
    score is the same): the fused order stands unless the reranker clearly prefers another hit."""
    best = max(fused, default=0.0)
    low, high = min(rerank, default=0.0), max(rerank, default=0.0)
    spread = high - low
    return [(f / best if best > 0 else 0.0) + (weight * (r - low) / spread if spread > 0 else 0.0)
            for f, r in zip(fused, rerank)]


def read_training(model_dir: Path) -> dict[str, object]:
    """The training record beside a model trained by citekb; {} for any other model."""
    path = model_dir / TRAINING_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise ModelError(f"{path} is damaged: {exc}") from exc
    return record if isinstance(record, dict) else {}
