"""Collections: several knowledge bases served side by side.

The server's index directory (``--index``, ``CITEKB_INDEX``) is the collection ``default``; each
other collection NAME is an index of its own in ``INDEX/collections/NAME``, with its own
documents and uploads, sharing the default's settings and its embedding model in memory."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray

from citekb.ingest.errors import ConfigError, IndexNotFoundError
from citekb.retrieval.embed import Embedder

from .keys import check_collection_name, is_collection_name
from .kb import KnowledgeBase

DEFAULT = "default"
COLLECTIONS_DIR = "collections"


def milvus_collection_for(base: str, name: str) -> str:
    """The Milvus collection holding collection name's index on a shared Milvus server: base plus
    name, with '_' and '-' (which Milvus names cannot hold) written so that no two names meet."""
    return f"{base}__{name.replace('_', '_0').replace('-', '_1')}"


class CollectionNotFoundError(IndexNotFoundError):
    """No collection of that name on this server."""


class SharedEmbedder:
    """The default collection's embedder, for the others: one model in memory for all of them,
    loaded on first use (listing a collection's documents needs none)."""

    def __init__(self, default: KnowledgeBase) -> None:
        self._default = default

    @property
    def model_id(self) -> str:
        return self._default.embedder.model_id

    @property
    def dim(self) -> int:
        return self._default.embedder.dim

    @property
    def languages(self) -> tuple[str, ...]:
        return self._default.embedder.languages

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> NDArray[np.float32]:
        return self._default.embedder.embed(texts, show_progress)


class Collections:
    """The collections of one server, each a KnowledgeBase opened on first use."""

    def __init__(self, default: KnowledgeBase) -> None:
        self.default = default
        self.root = default.settings.index / COLLECTIONS_DIR
        self._kbs: dict[str, KnowledgeBase] = {DEFAULT: default}
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        return self.default.settings.index if name == DEFAULT else self.root / check_collection_name(name)

    def names(self) -> list[str]:
        """"default" first, then the others by name."""
        others = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        return [DEFAULT, *(n for n in others if n != DEFAULT and is_collection_name(n))]

    def exists(self, name: str) -> bool:
        return name == DEFAULT or self.path(name).is_dir()

    def get(self, name: str) -> KnowledgeBase:
        """The collection's KnowledgeBase; CollectionNotFoundError if it was never created."""
        if not self.exists(name):
            raise CollectionNotFoundError(f"no collection {name!r} on this server")
        with self._lock:
            kb = self._kbs.get(name)
            if kb is None:
                base = self.default.settings
                update: dict[str, object] = {"index": self.path(name)}
                if base.milvus_uri is not None:
                    # A Milvus server is shared by every collection: each needs its own Milvus
                    # collection there (an embedded milvus-lite file lives in the index directory).
                    update["milvus_collection"] = milvus_collection_for(base.milvus_collection, name)
                settings = base.model_copy(update=update)
                # cast: the protocol's attributes are plain ones; these are read-only properties.
                shared = cast(Embedder, SharedEmbedder(self.default))
                kb = KnowledgeBase(settings, embedder=shared, extractors=self.default.extractors)
                self._kbs[name] = kb
            return kb

    def create(self, name: str) -> bool:
        """Create collection name (empty until documents are ingested); False if it already existed."""
        path = self.path(name)
        if self.exists(name):
            return False
        path.mkdir(parents=True)
        return True

    def delete(self, name: str) -> None:
        """Remove collection name with all its documents and uploads. The default cannot be removed."""
        if name == DEFAULT:
            raise ConfigError("the default collection cannot be deleted; delete its documents instead")
        kb = self.get(name)
        with kb.store.writer():  # not while an ingest writes to it
            with self._lock:
                self._kbs.pop(name, None)
            staged = self.root / f".deleting-{name}"
            self.path(name).rename(staged)  # gone from names() at once, even if rmtree is slow
        shutil.rmtree(staged, ignore_errors=True)
