"""All settings in one place, from arguments, CITEKB_* environment variables and defaults.
Built once, in cli.main or create_app, and passed down; library code never reads os.environ."""

from __future__ import annotations

from pathlib import Path
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from citekb.generation.config import (ExtractiveConfig, GenerationConfig, OpenAIConfig, TinyLLMConfig, TransformersConfig,
                                      VerifyConfig)
from citekb.ingest.config import ChunkingConfig, IngestConfig
from citekb.retrieval.config import DenseIndexConfig, RerankConfig, RetrievalConfig
from citekb.retrieval.embed import MINILM_ID, Precision
from citekb.retrieval.backends.config import MilvusConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITEKB_", extra="forbid")

    index: Path = Path(".citekb")
    embedding_model: str = MINILM_ID
    # Arithmetic of the torch models (embedder, reranker): "auto" is bfloat16 where the CPU has
    # it in hardware, 3.3x faster embedding with vectors within cosine 0.9999 (retrieval/embed.py).
    model_precision: Precision = "auto"

    chunk_tokens: int = 300
    chunk_overlap: int = 40
    max_file_mb: float = 200
    max_chars_per_file: int = 5_000_000
    ocr: bool = True  # read image-only PDF pages with rapidocr
    ingest_timeout_s: float = Field(60, gt=0)  # per file without progress (a PDF page is progress), in the worker process
    ingest_max_file_s: float = Field(1800, gt=0)  # per file in all
    ingest_max_memory_mb: int = Field(2048, ge=256)  # address-space cap of the extraction worker
    ingest_workers: int = Field(2, ge=1, le=64)  # extraction worker processes, reading ahead while ingest embeds
    # Extraction on Ray instead: "local" (a Ray started on this machine for the ingest), "auto"
    # or "ray://head:10001" (a running cluster); ingest_workers actors then read the files.
    ray_address: str | None = None

    bm25_weight: float = 1.0
    dense_weight: float = 1.0
    fusion: Literal["score", "rrf"] = "score"
    candidates: int = 100
    sentence_share: float = 0.3  # of the keyword leg, given to a chunk's best sentence (English queries)
    sentence_rows: int = Field(20, ge=1)  # of each leg's candidates, how many get that sentence score
    rerank: Literal["none", "cross-encoder"] = "none"
    rerank_model: Path | None = None
    rerank_top_n: int = 5  # see RerankConfig.top_n
    # None: the reranker's scores alone order the top-N; w: fused + w * scaled reranker score.
    rerank_mix: float | None = Field(None, ge=0)
    # The dense index turns approximate (IVF) from this many sentence vectors on (0: never);
    # ann_nprobe: IVF lists searched per query (unset: 12% of them). See retrieval/dense.py.
    ann_min_vectors: int = 200_000
    ann_nprobe: int | None = Field(None, ge=1)

    answer_backend: str = "extractive"
    ask_k: int = Field(5, ge=1, le=100)  # hits handed to the generator (and returned) by ask
    # Every answer sentence is checked against the passages it cites: "flag" marks the ones
    # without support (supported: false), "drop" removes them, "off" skips the check.
    verify_mode: Literal["flag", "drop", "off"] = "flag"
    # Abstain ("not in the documents") unless the chosen sentence holds this share of the sentence
    # chooser's softmax (extractive and tinyllm backends; ExtractiveConfig.min_confidence). 0: always answer.
    answer_min_confidence: float = Field(ExtractiveConfig().min_confidence, ge=0, lt=1)
    # answer_backend "openai": any OpenAI-compatible chat endpoint (Ollama, vLLM, llama.cpp, ...).
    openai_base_url: str = "http://127.0.0.1:11434/v1"
    openai_model: str = ""
    openai_api_key: SecretStr | None = None
    openai_timeout_s: float = Field(60, gt=0)
    openai_retries: int = Field(2, ge=0, le=10)
    # answer_backend "transformers": a local causal-LM directory, optionally with a LoRA adapter.
    transformers_model: Path | None = None
    transformers_adapter: Path | None = None
    transformers_merge_adapter: bool = False
    # answer_backend "tinyllm": a checkpoint directory made by `citekb train`.
    tinyllm_model: Path | None = None
    tinyllm_copy_constrained: bool = True  # answers quote a span of the passage they cite
    tinyllm_answer_spans: Literal["model", "heuristic", "off"] = TinyLLMConfig().answer_spans  # which answer-shaped span

    max_upload_mb: float = Field(50, gt=0)

    # Serving to portals (README, "Embedding in portals"). auth "auto": API keys are required as
    # soon as one exists, and with none the server is open, which `citekb serve` allows only on
    # a loopback address; "required": always. Keys and collections live in the index directory.
    auth: Literal["auto", "required"] = "auto"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)  # comma-separated in the environment
    rate_limit_per_min: float = Field(120, ge=0)  # requests per API key; 0: no limit
    rate_limit_burst: int = Field(30, ge=1)  # requests a key may send at once before the rate applies

    # A long ingest publishes what it has done so far this often (0: never), so a crash loses at
    # most that much work. Each commit rewrites the whole index, hence time rather than files
    # by default: the cost stays a bounded share of the ingest however large the index grows.
    commit_every_files: int = Field(0, ge=0)
    commit_every_s: float = Field(300, ge=0)

    # Where the index lives: "faiss", the index directory (FAISS + BM25 files), or "milvus", a
    # Milvus collection: an embedded milvus-lite file (default INDEX/milvus.db) or a server's
    # http://host:19530 (README, "Milvus").
    backend: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str | None = None
    milvus_collection: str = Field("citekb", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
    milvus_token: SecretStr | None = None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise ValueError(f"CORS origin {origin!r} is not '*' or scheme://host[:port] (no path, no trailing slash)")
        return value

    @field_validator("rerank_model")
    @classmethod
    def _model_dir_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"reranker model directory {value} does not exist")
        return value

    def ingest_config(self) -> IngestConfig:
        return IngestConfig(
            chunking=ChunkingConfig(target_tokens=self.chunk_tokens, overlap_tokens=self.chunk_overlap,
                                    max_block_tokens=self.chunk_tokens),
            max_file_bytes=int(self.max_file_mb * 2**20),
            max_chars_per_file=self.max_chars_per_file,
            ocr=self.ocr,
            timeout_s=self.ingest_timeout_s,
            max_file_s=self.ingest_max_file_s,
            max_memory_mb=self.ingest_max_memory_mb,
        )

    def retrieval_config(self) -> RetrievalConfig:
        return RetrievalConfig(
            weights={"bm25": self.bm25_weight, "dense": self.dense_weight},
            fusion=self.fusion,
            candidates=self.candidates,
            sentence_share=self.sentence_share,
            sentence_rows=self.sentence_rows,
            rerank=RerankConfig(backend=self.rerank, model_dir=self.rerank_model, top_n=self.rerank_top_n,
                                mix=self.rerank_mix, precision=self.model_precision),
            dense=DenseIndexConfig(ann_min_vectors=self.ann_min_vectors, nprobe=self.ann_nprobe),
        )

    def milvus_config(self) -> MilvusConfig:
        token = self.milvus_token.get_secret_value() if self.milvus_token is not None else None
        return MilvusConfig(uri=self.milvus_uri or str(self.index / "milvus.db"), collection=self.milvus_collection, token=token)

    def generation_config(self) -> GenerationConfig:
        key = self.openai_api_key.get_secret_value() if self.openai_api_key is not None else None
        return GenerationConfig(
            backend=self.answer_backend, extractive=ExtractiveConfig(min_confidence=self.answer_min_confidence),
            openai=OpenAIConfig(base_url=self.openai_base_url, model=self.openai_model, api_key=key,
                                timeout_s=self.openai_timeout_s, retries=self.openai_retries),
            transformers=TransformersConfig(model_dir=self.transformers_model, adapter_dir=self.transformers_adapter,
                                            merge_adapter=self.transformers_merge_adapter),
            verify=VerifyConfig(mode=self.verify_mode),
            tinyllm=TinyLLMConfig(model_dir=self.tinyllm_model, copy_constrained=self.tinyllm_copy_constrained,
                                  answer_spans=self.tinyllm_answer_spans),
        )
