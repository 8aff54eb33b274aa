"""Milvus as the retrieval store: each chunk is one entity holding its text's BM25 sparse
vector, its dense vector and its metadata (document, access groups, the chunk itself), so both
legs and the access filter run inside Milvus. Documents live in a second, small collection.

    <collection>        chunk_id | doc_id | terms -> sparse (Milvus BM25 function) | dense | groups | chunk (JSON)
    <collection>_docs   doc_id | record (JSON) | v (a 2-d placeholder: Milvus needs a vector field)
                        plus one row "__meta__": embedding model, dimension, analyzer, version

The same code serves an embedded milvus-lite database (`uri` a file path, for tests and one
machine) and a Milvus server or cluster (`uri` http://host:19530). MilvusStore and
MilvusSnapshot offer what KnowledgeBase uses of IndexStore and Snapshot, so ingest, delete,
sync and search work unchanged on either backend.

Differences from the directory index, on purpose:
- Keyword analysis stays citekb's own (retrieval/analyze.py: stemming, jieba for Chinese);
  Milvus indexes the analysed terms, joined by spaces, with a tokenizer that only splits on
  them, so both backends agree on what a term is. Milvus computes the BM25 statistics.
- One dense vector per chunk: the normalised mean of its sentence vectors (the directory index
  keeps one per sentence; Milvus has no multi-vector entity in milvus-lite).
- Writes are buffered in the snapshot and applied at publish(), documents' chunks before their
  records; a crash part-way through a publish can leave some of it applied (ingesting again
  completes it), where the directory index flips all of it at once."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from citekb.ingest.document import Chunk
from citekb.ingest.errors import (
    ConfigError,
    DocumentNotFoundError,
    IndexMismatchError,
    IndexNotFoundError,
)
from numpy.typing import NDArray

from ..analyze import analyze
from ..config import RetrievalConfig
from ..embed import Embedder
from ..fusion import fuse_rrf, fuse_scores
from ..hit import Hit
from ..indexing import ChunkRows, index_text
from ..rerank import Reranker
from ..search import HybridSearcher
from ..store import (
    ANALYZER,
    DocumentRecord,
    chunk_from_json,
    chunk_to_json,
    exclusive_lock,
    readable_by,
)
from .config import MilvusConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
FORMAT_VERSION = 1
META_ID = "__meta__"
MAX_TERMS_CHARS = 60_000  # Milvus VARCHAR holds 65,535 bytes; a longer chunk's tail terms are dropped
_BATCH = 1000  # entities per insert call
_IN_BATCH = 200  # ids per "in [...]" filter


def _quote(value: str) -> str:
    return json.dumps(value)  # a Milvus filter string literal: double quotes, backslash escapes


def group_filter(groups: AbstractSet[str]) -> str:
    """Rows a reader in groups may read: those of documents without groups or sharing one."""
    names = ", ".join(_quote(g) for g in sorted(groups))
    return f"array_length(groups) == 0 or array_contains_any(groups, [{names}])"


class _LiteClockNotice(logging.Filter):
    """milvus-lite serves no MVCC timestamp, so every query iterator warns that it uses the
    client's clock instead: expected with milvus-lite, and printed on every command otherwise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


class MilvusStore:
    """One citekb index in Milvus: finds, opens and writes its two collections."""

    def __init__(self, cfg: MilvusConfig) -> None:
        self.cfg = cfg
        self.root = Path(cfg.uri) if cfg.embedded else None
        self._client: Any = None
        self.chunks_name, self.docs_name = cfg.collection, f"{cfg.collection}_docs"

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:
                raise ConfigError("the milvus backend needs pymilvus (and milvus-lite for a local file): pip install pymilvus milvus-lite") from exc
            if self.root is not None:
                self.root.parent.mkdir(parents=True, exist_ok=True)
                iterator_log = logging.getLogger("pymilvus.client.iterator.query_iterator")
                if not any(isinstance(f, _LiteClockNotice) for f in iterator_log.filters):
                    iterator_log.addFilter(_LiteClockNotice())
            try:
                self._client = MilvusClient(uri=self.cfg.uri, token=self.cfg.token or "")
            except Exception as exc:  # grpc, connection and lite start-up errors have no common base
                if self.root is not None:
                    # milvus-lite logs the cause (another process holds the file's lock) and raises this.
                    raise ConfigError(f"cannot open the Milvus database {self.root}: it is open in another process "
                                      "(milvus-lite serves one process at a time; use a Milvus server to share it)") from exc
                raise ConfigError(f"cannot open Milvus at {self.cfg.uri}: {exc}") from exc
            # Collections come up released when Milvus (or milvus-lite, in a new process) starts.
            for name in (self.chunks_name, self.docs_name):
                if self._client.has_collection(name):
                    self._client.load_collection(name)
        return self._client

    def close(self) -> None:
        """Disconnect; for an embedded database also stop this process's milvus-lite server for
        the file (every store on it in this process), so another process may open it."""
        if self._client is not None:
            self._client.close()
            self._client = None
            if self.root is not None:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(str(self.root))

    # ---- what IndexStore offers

    @property
    def exists(self) -> bool:
        return bool(self.client.has_collection(self.docs_name)) and self._meta() is not None

    def current(self) -> Path:
        """A name for the live state: it changes with every publish, so a reader reloads then."""
        meta = self._meta() if self.client.has_collection(self.docs_name) else None
        if meta is None:
            raise IndexNotFoundError(f"no citekb collection {self.cfg.collection!r} in Milvus at {self.cfg.uri}: run `citekb ingest` first")
        return Path(f"milvus-{self.cfg.collection}-v{meta['version']}")

    def create(self, model_id: str, dim: int) -> MilvusSnapshot:
        return MilvusSnapshot(self, model_id, dim, {}, version=0)

    def load(self, expect_model_id: str | None = None) -> MilvusSnapshot:
        return self.load_current(expect_model_id)[1]

    def load_current(self, expect_model_id: str | None = None) -> tuple[Path, MilvusSnapshot]:
        path = self.current()
        meta = self._meta()
        assert meta is not None
        if meta.get("format_version") != FORMAT_VERSION or meta.get("analyzer") != ANALYZER:
            raise IndexMismatchError(f"Milvus collection {self.cfg.collection!r} was written by another citekb version or analyzer; re-ingest or import it again")
        if expect_model_id is not None and meta["model_id"] != expect_model_id:
            raise IndexMismatchError(f"Milvus collection {self.cfg.collection!r} was built with embedding model {meta['model_id']!r}, "
                                     f"not {expect_model_id!r}; re-ingest into a new collection or use the same model")
        documents = {}
        for row in self._query_all(self.docs_name, f"doc_id != {_quote(META_ID)}", ["record"]):
            record = DocumentRecord(**_json(row["record"]))
            documents[record.doc_id] = record
        return path, MilvusSnapshot(self, meta["model_id"], int(meta["dim"]), documents, version=int(meta["version"]))

    def read_current(self, read: Callable[[Path], T]) -> tuple[Path, T]:
        raise ConfigError("citekb check and repair read the directory index; with the milvus backend, Milvus keeps its data consistent itself")

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """One citekb writer at a time. Embedded: a lock file beside the database. A server is
        shared by design; concurrent writers of different documents do not conflict there."""
        if self.root is None:
            yield
            return
        self.root.parent.mkdir(parents=True, exist_ok=True)
        busy = ConfigError(f"Milvus database {self.root} is being written by another process; try again when it finishes")
        with exclusive_lock(Path(f"{self.root}.lock"), busy):
            yield

    def publish(self, snapshot: MilvusSnapshot) -> Path:
        """Apply snapshot's pending writes and make them visible as a new version."""
        snapshot.flush()
        return self.current()

    def searcher(self, embedder: Embedder, cfg: RetrievalConfig, reranker: Reranker | None = None) -> MilvusSearcher:
        return MilvusSearcher(embedder, cfg, reranker)

    def drop(self) -> None:
        """Remove both collections (used by `citekb import --replace` and tests)."""
        for name in (self.chunks_name, self.docs_name):
            if self.client.has_collection(name):
                self.client.drop_collection(name)

    # ---- Milvus plumbing

    def _meta(self) -> dict[str, Any] | None:
        rows = self.client.query(self.docs_name, filter=f"doc_id == {_quote(META_ID)}", output_fields=["record"])
        return _json(rows[0]["record"]) if rows else None

    def _query_all(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        iterator = self.client.query_iterator(collection, batch_size=1000, filter=expr, output_fields=fields)
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    def _ensure_collections(self, dim: int) -> None:
        from pymilvus import DataType, Function, FunctionType

        client = self.client
        if not client.has_collection(self.chunks_name):
            schema = client.create_schema(auto_id=False)
            schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=128)
            schema.add_field("terms", DataType.VARCHAR, max_length=65_535, enable_analyzer=True, analyzer_params=self.cfg.analyzer_params)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field("groups", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=64, max_length=64)
            schema.add_field("chunk", DataType.JSON)
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"], output_field_names=["sparse"]))
            index = client.prepare_index_params()
            # AUTOINDEX by default: a server picks its own (HNSW on standalone); milvus-lite 2.5
            # knows only FLAT, IVF_FLAT and AUTOINDEX.
            params = {"M": 16, "efConstruction": 200} if self.cfg.dense_index == "HNSW" else {}
            index.add_index("dense", index_type=self.cfg.dense_index, metric_type="IP", params=params)
            # k1 and b as the directory index's BM25 (keyword.py), so both rank alike.
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": 1.5, "bm25_b": 0.75})
            if not self.cfg.embedded:  # deletes and regroups filter by doc_id; embedded engines scan
                index.add_index("doc_id", index_type="INVERTED")
            self._create(self.chunks_name, schema, index)
        if not client.has_collection(self.docs_name):
            schema = client.create_schema(auto_id=False)
            schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=128)
            schema.add_field("record", DataType.JSON)
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
            index = client.prepare_index_params()
            index.add_index("v", index_type="FLAT", metric_type="L2")
            self._create(self.docs_name, schema, index)

    def _create(self, name: str, schema: Any, index: Any) -> None:
        # Indexes created apart and not waited for (sync=False): the wait asks for a timestamp
        # that milvus-lite does not serve, and its server logs a traceback for each refusal.
        # load_collection waits until the collection can be searched.
        self.client.create_collection(name, schema=schema)
        self.client.create_index(name, index, sync=False)
        self.client.load_collection(name)


def _hit_id(hit: Any) -> str:
    """A search hit's chunk_id: pymilvus 3 names it by the primary field, 2.x calls it "id"."""
    value = hit.get("chunk_id")
    return str(value if value is not None else hit["id"])


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def _mean_vectors(rows: ChunkRows, n: int, dim: int) -> NDArray[np.float32]:
    """One vector per chunk: the normalised mean of its sentence vectors (zero if it has none)."""
    out = np.zeros((n, dim), np.float32)
    if len(rows.owners):
        np.add.at(out, rows.owners, rows.vectors)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class MilvusSnapshot:
    """The documents of a Milvus-held index, and the writes not yet published. Offers what
    KnowledgeBase uses of Snapshot; reading chunks goes to Milvus."""

    def __init__(self, store: MilvusStore, model_id: str, dim: int, documents: dict[str, DocumentRecord], version: int) -> None:
        self.store, self.model_id, self.dim, self.documents = store, model_id, dim, documents
        self.version = version
        # What Milvus holds of each document's chunks (their source name and groups), to see at
        # publish which documents were removed, moved or regrouped.
        self._stored = {d: (r.source, list(r.groups)) for d, r in documents.items()}
        self._added: dict[str, tuple[list[Chunk], NDArray[np.float32], list[list[str]] | None]] = {}

    def add(self, record: DocumentRecord, chunks: Sequence[Chunk], rows: ChunkRows) -> None:
        if record.doc_id in self.documents:
            self.remove(record.doc_id)
        if rows.terms and len(chunks) != len(rows.terms):
            raise ValueError("chunks and their index rows must be aligned")
        self._added[record.doc_id] = (list(chunks), _mean_vectors(rows, len(chunks), self.dim), rows.terms or None)
        self.documents[record.doc_id] = record

    def remove(self, doc_id: str) -> DocumentRecord:
        record = self.documents.pop(doc_id, None)
        if record is None:
            raise DocumentNotFoundError(f"no document with doc_id {doc_id!r} in the index")
        self._added.pop(doc_id, None)
        return record

    def find_path(self, path: str) -> DocumentRecord | None:
        return next((r for r in self.documents.values() if r.path == path), None)

    def under(self, folder: Path) -> list[DocumentRecord]:
        return [r for r in self.documents.values() if Path(r.path).is_relative_to(folder)]

    def relocate(self, doc_id: str, path: Path) -> DocumentRecord:
        record = self.documents.get(doc_id)
        if record is None:
            raise DocumentNotFoundError(f"no document with doc_id {doc_id!r} in the index")
        record.path, record.source = str(path), path.name  # its chunks follow at publish
        return record

    def readable(self, groups: AbstractSet[str] | None) -> str | None:
        """The Milvus filter for a reader in groups; None when it may read every document."""
        if groups is None or all(readable_by(r, groups) for r in self.documents.values()):
            return None
        return group_filter(groups)

    @property
    def chunks(self) -> _StoredChunks:
        return _StoredChunks(self.store)

    def flush(self) -> None:
        """Publish: delete what went, write what came, rewrite moved or regrouped documents'
        chunks, then the records and a new version."""
        store, client = self.store, self.store.client
        store._ensure_collections(self.dim)
        gone = [d for d in self._stored if d not in self.documents or d in self._added]
        for i in range(0, len(gone), _IN_BATCH):
            ids = ", ".join(_quote(d) for d in gone[i:i + _IN_BATCH])
            client.delete(store.chunks_name, filter=f"doc_id in [{ids}]")
            client.delete(store.docs_name, filter=f"doc_id in [{ids}]")
        batch: list[dict[str, Any]] = []
        for doc_id, (chunks, dense, terms) in self._added.items():
            groups = list(self.documents[doc_id].groups)
            for i, c in enumerate(chunks):
                text = " ".join(terms[i] if terms is not None else analyze(index_text(c)))
                batch.append({"chunk_id": c.chunk_id, "doc_id": doc_id, "terms": text[:MAX_TERMS_CHARS], "dense": dense[i].tolist(),
                              "groups": groups, "chunk": chunk_to_json(c)})
                if len(batch) >= _BATCH:
                    client.insert(store.chunks_name, batch)
                    batch = []
        if batch:
            client.insert(store.chunks_name, batch)
        changed = [d for d, (source, groups) in self._stored.items()
                   if d in self.documents and d not in self._added
                   and (self.documents[d].source, list(self.documents[d].groups)) != (source, groups)]
        for doc_id in changed:
            record = self.documents[doc_id]
            rows = list(store._query_all(store.chunks_name, f"doc_id == {_quote(doc_id)}", ["*"]))
            for row in rows:
                row.pop("sparse", None)  # the BM25 function output is computed from terms again
                chunk = chunk_from_json(_json(row["chunk"]))
                row["chunk"] = chunk_to_json(replace(chunk, locator=replace(chunk.locator, source=record.source)))
                row["groups"] = list(record.groups)
            for i in range(0, len(rows), _BATCH):
                client.upsert(store.chunks_name, rows[i:i + _BATCH])
        records = [{"doc_id": d, "record": asdict(self.documents[d]), "v": [0.0, 0.0]} for d in [*self._added, *changed]]
        for i in range(0, len(records), _BATCH):
            client.upsert(store.docs_name, records[i:i + _BATCH])
        self.version += 1
        meta = {"format_version": FORMAT_VERSION, "analyzer": ANALYZER, "model_id": self.model_id, "dim": self.dim,
                "version": self.version, "updated": time.time()}
        client.upsert(store.docs_name, [{"doc_id": META_ID, "record": meta, "v": [0.0, 0.0]}])
        client.flush(store.chunks_name)
        client.flush(store.docs_name)
        self._stored = {d: (r.source, list(r.groups)) for d, r in self.documents.items()}
        self._added = {}
        log.info("published milvus collection=%s version=%d documents=%d", store.cfg.collection, self.version, len(self.documents))


class _StoredChunks:
    """The chunks Milvus holds, read on demand: their count, or all of them in turn."""

    def __init__(self, store: MilvusStore) -> None:
        self._store = store

    def __len__(self) -> int:
        if not self._store.client.has_collection(self._store.chunks_name):
            return 0
        rows = self._store.client.query(self._store.chunks_name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def __iter__(self) -> Iterator[Chunk]:
        if self._store.client.has_collection(self._store.chunks_name):
            for row in self._store._query_all(self._store.chunks_name, "", ["chunk"]):
                yield chunk_from_json(_json(row["chunk"]))

    def with_vectors(self) -> Iterator[tuple[Chunk, NDArray[np.float32]]]:
        """Every chunk with its dense vector (for export)."""
        if self._store.client.has_collection(self._store.chunks_name):
            for row in self._store._query_all(self._store.chunks_name, "", ["chunk", "dense"]):
                yield chunk_from_json(_json(row["chunk"])), np.asarray(row["dense"], np.float32)


class MilvusSearcher(HybridSearcher):
    """HybridSearcher's legs run in Milvus (BM25 on the sparse field, ANN on the dense one,
    both under the access filter); fusion and reranking are the same code as the directory
    index's, so the two backends rank alike."""

    def search(self, snapshot: Any, query: str, k: int = 10, mask: Any = None) -> list[Hit]:
        query = query.strip()
        if not query:
            raise ConfigError("the query is empty")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        store: MilvusStore = snapshot.store
        if not store.client.has_collection(store.chunks_name):
            return []
        expr = mask if isinstance(mask, str) else ""
        weights = self.leg_weights(query)
        n = max(self.cfg.candidates, k)
        ids: dict[str, int] = {}  # chunk_id -> item number, for the fusion functions
        legs: dict[str, list[tuple[int, float]]] = {}
        if weights.get("bm25", 0) > 0:
            terms = analyze(query)
            if terms:
                found = store.client.search(store.chunks_name, data=[" ".join(terms)], anns_field="sparse", limit=n, filter=expr,
                                            search_params={"metric_type": "BM25"})[0]
                # milvus-lite reports BM25 as a distance (-score), a server as the score itself.
                legs["bm25"] = [(ids.setdefault(_hit_id(h), len(ids)), abs(float(h["distance"])))
                                for h in found if h["distance"]]
        if weights.get("dense", 0) > 0:
            vector = self.embedder.embed([query])[0]
            params = {"metric_type": "IP", "params": {"ef": max(store.cfg.hnsw_ef, n)} if store.cfg.dense_index == "HNSW" else {}}
            found = store.client.search(store.chunks_name, data=[vector.tolist()], anns_field="dense", limit=n, filter=expr,
                                        search_params=params)[0]
            # A chunk with none of its text in a language the embedder reads holds the zero
            # vector (_mean_vectors), whose inner product with any query is exactly 0: no candidate.
            legs["dense"] = [(ids.setdefault(_hit_id(h), len(ids)), float(h["distance"])) for h in found if h["distance"]]
        per_leg = {name: dict(results) for name, results in legs.items()}
        fused = fuse_rrf(legs, weights, self.cfg.rrf_k) if self.cfg.fusion == "rrf" else fuse_scores(legs, weights)
        keep = fused[: max(self.cfg.rerank.top_n, k) if self.reranker is not None else k]
        names = {item: chunk_id for chunk_id, item in ids.items()}
        chunks = self._fetch(store, [names[item] for item, _ in keep])
        hits = [Hit(chunk=chunks[names[item]], score=score,
                    scores={"fused": score, **{leg: scores[item] for leg, scores in per_leg.items() if item in scores}})
                for item, score in keep if names[item] in chunks]
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits, k)
        return hits[:k]

    @staticmethod
    def _fetch(store: MilvusStore, chunk_ids: list[str]) -> dict[str, Chunk]:
        if not chunk_ids:
            return {}
        rows = store.client.get(store.chunks_name, ids=chunk_ids, output_fields=["chunk"])
        return {row["chunk_id"]: chunk_from_json(_json(row["chunk"])) for row in rows}
