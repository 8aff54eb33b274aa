"""Configuration of answer generation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from citekb.ingest.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ExtractiveConfig:
    top_chunks: int = 3  # sentences are picked from this many of the best hits
    max_sentences: int = 1  # a second sentence cost 2 points of cited-page precision on ../shared/data/qa
    # A second sentence joins the answer only if its confidence is this close to the best one's.
    keep_ratio: float = 0.85
    # Below this share of the question's term weight, nothing answers it: say so instead.
    min_support: float = 0.25
    # The sentence chooser (extractive.rank_sentences, shared with the tinyllm backend) scores each
    # candidate sentence with a weighted sum of these features; the weights were fitted (a
    # softmax over each question's candidates) on the even-numbered English questions of
    # ../shared/data/qa, and measured on the odd ones (docs/benchmarks.md).
    lexical_weight: float = 4.08  # the share of the question's rare-term weight it holds
    semantic_weight: float = 2.69  # the embedder's cosine to the question
    agreement_weight: float = 2.30  # their product: both agree
    bigram_weight: float = 2.29  # the share of the question's adjacent term pairs it holds, in order
    hit_score_weight: float = 1.98  # its hit's retrieval score over the best hit's
    rank_weight: float = 0.56  # subtracted per rank of its hit below the first
    answer_type_weight: float = 1.29  # it holds a word of the asked-for type (a number for "how many")
    closest_weight: float = 1.21  # it is the embedder's closest sentence
    # Abstain (NOT_FOUND) unless the chosen sentence holds at least this share of the softmax of
    # the candidates' scores: fewer answers, fewer wrong citations. 0: always answer.
    min_confidence: float = 0.25
    # A sentence this close in meaning answers even when it shares few of the question's words.
    min_similarity: float = 0.5
    # ...and a sentence with enough shared terms must still be at least this close in meaning
    # ("Who won the 1998 world cup?" shares "won" and "cup" with many an unrelated sentence).
    min_related: float = 0.25

    def __post_init__(self) -> None:
        if self.top_chunks < 1 or self.max_sentences < 1:
            raise ConfigError("extractive top_chunks and max_sentences must be at least 1")
        if self.semantic_weight < 0 or self.lexical_weight < 0:
            raise ConfigError("extractive semantic_weight and lexical_weight must be >= 0")
        if not 0 <= self.min_confidence < 1:
            raise ConfigError(f"extractive min_confidence must be in [0, 1), got {self.min_confidence}")
        if not (0 < self.keep_ratio <= 1 and 0 <= self.min_support < 1 and -1 <= self.min_similarity <= 1
                and -1 <= self.min_related <= 1):
            raise ConfigError("extractive keep_ratio must be in (0, 1] and min_support in [0, 1)")


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    """Any OpenAI-compatible chat endpoint: OpenAI, Ollama, vLLM, llama.cpp server, LM Studio..."""

    base_url: str = "http://127.0.0.1:11434/v1"  # Ollama's; vLLM serves :8000/v1, llama.cpp :8080/v1
    model: str = ""  # required: the endpoint's model name
    api_key: str | None = None  # sent as a Bearer token when set; local servers need none
    timeout_s: float = 60.0  # per attempt, for the whole reply (a stream: between two chunks)
    retries: int = 2  # more attempts after a connection error, a timeout, a 429 or a 5xx
    retry_backoff_s: float = 0.5  # wait before the first retry; doubled for each further one
    max_tokens: int = 512
    temperature: float = 0.0  # answers should not vary between two asks of one question
    max_passage_chars: int = 2000  # each passage is cut to this many characters in the prompt

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"openai base_url {self.base_url!r} must start with http:// or https://")
        if self.timeout_s <= 0 or self.retries < 0 or self.retry_backoff_s < 0 or self.max_tokens < 1 or self.max_passage_chars < 1:
            raise ConfigError("openai timeout_s and max_tokens must be positive and retries >= 0")


@dataclass(frozen=True, slots=True)
class TransformersConfig:
    """A local Hugging Face causal LM, optionally with a PEFT LoRA adapter."""

    model_dir: Path | None = None  # required: a directory holding config.json, weights and tokenizer
    adapter_dir: Path | None = None  # a PEFT adapter (adapter_config.json) trained on that model
    merge_adapter: bool = False  # fold the adapter into the weights once: faster generation
    max_new_tokens: int = 256
    max_passage_chars: int = 1500


@dataclass(frozen=True, slots=True)
class VerifyConfig:
    """How each answer sentence is checked against the passages it cites (generation.verify)."""

    mode: Literal["flag", "drop", "off"] = "flag"  # drop: unsupported sentences and citations go
    # A cited passage supports a sentence when one of its sentences holds this share of the
    # claim's term weight and the embedder finds them related at least min_related...
    min_overlap: float = 0.5
    min_related: float = 0.5
    # ...or when the embedder finds them this close in meaning (a paraphrase sharing few words).
    min_similarity: float = 0.8
    # With the question at hand (KnowledgeBase.ask passes it): a sentence is unsupported too when
    # it and what supports it hold less than this share of the question's term weight and the
    # embedder finds it less related to the question than min_relevance_similarity. 0: no check.
    min_relevance: float = 0.0
    min_relevance_similarity: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("flag", "drop", "off"):
            raise ConfigError(f"verify mode {self.mode!r} must be one of flag, drop, off")
        if not (0 <= self.min_overlap <= 1 and -1 <= self.min_related <= 1 and -1 <= self.min_similarity <= 1):
            raise ConfigError("verify min_overlap must be in [0, 1] and the similarities in [-1, 1]")


@dataclass(frozen=True, slots=True)
class TinyLLMConfig:
    """The "tinyllm" backend: a TinyLM checkpoint trained on the corpus by `citekb train`."""

    model_dir: Path | None = None  # required: the checkpoint directory
    copy_constrained: bool = True  # the answer is a quoted span of a passage, then its [n]
    passages: int = 3  # hits numbered in the prompt (the model was trained with 3)
    passage_tokens: int | None = None  # per passage window; None: as in the model's training
    max_answer_tokens: int = 32
    # Copy-constrained, the quote is one of the best sentence's answer-shaped spans
    # (generation/spans.py), or the whole sentence when it has none:
    # "heuristic" takes the best by the spans' own score, "model" the likeliest under TinyLM
    # (log P per token), "off" lets greedy decoding quote any words. Heuristic is the default:
    # on ../shared/data/qa it scored answer F1 0.30 against 0.22 for the model's choice (English).
    answer_spans: Literal["model", "heuristic", "off"] = "heuristic"
    temperature: float = 0.0  # 0: greedy
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.passages < 1 or self.max_answer_tokens < 1 or (self.passage_tokens is not None and self.passage_tokens < 8):
            raise ConfigError("tinyllm passages and max_answer_tokens must be positive, passage_tokens at least 8")
        if self.answer_spans not in ("model", "heuristic", "off"):
            raise ConfigError(f"tinyllm answer_spans {self.answer_spans!r} must be one of model, heuristic, off")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ConfigError("tinyllm sampling needs temperature >= 0, 0 < top_p <= 1 and top_k >= 0")


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    backend: str = "extractive"
    extractive: ExtractiveConfig = ExtractiveConfig()
    openai: OpenAIConfig = OpenAIConfig()
    transformers: TransformersConfig = TransformersConfig()
    verify: VerifyConfig = VerifyConfig()
    tinyllm: TinyLLMConfig = TinyLLMConfig()
