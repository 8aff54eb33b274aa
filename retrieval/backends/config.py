"""Configuration of the Milvus retrieval backend (kept apart from milvus.py so settings can
name it without importing pymilvus or FAISS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class MilvusConfig:
    uri: str  # a file path: embedded milvus-lite; http(s)://host:19530: a Milvus server or cluster
    collection: str = "citekb"
    token: str | None = None  # "user:password" or an API key, for a server
    dense_index: str = "AUTOINDEX"  # Milvus chooses (HNSW on a server); "HNSW", "FLAT" (exact), ...
    hnsw_ef: int = 128  # HNSW search breadth (dense_index "HNSW"); at least the candidates asked for

    @property
    def embedded(self) -> bool:
        return "://" not in self.uri

    @property
    def analyzer_params(self) -> dict[str, Any]:
        # The terms come analysed and space-separated. A server's "whitespace" tokenizer keeps
        # them as they are; milvus-lite has only "standard" (\w+, lower-cased), which also
        # keeps them, since citekb's terms are runs of letters and digits.
        return {"tokenizer": "standard"} if self.embedded else {"tokenizer": "whitespace"}
