"""Measure retrieval and answers on a user's own gold questions or a BEIR folder.

Gold questions (the format of sample_docs/questions.jsonl):
    {"id", "lang", "question", "answers": [...], "gold": [{"file", "page"} | {"file", "heading", "line_start", "line_end"}]}
A hit matches a gold entry when its file name is the gold file and, for PDF/DOCX, its pages
(page..page_end, at most two) include the gold page; for Markdown, its lines overlap the gold
lines (or, without lines, its heading path ends with the gold heading).

BEIR: corpus.jsonl, queries.jsonl, qrels/<split>.tsv; each corpus entry becomes one document."""

from __future__ import annotations

import csv
import json
import math
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citekb.ingest.chunking import chunk
from citekb.ingest.config import ChunkingConfig
from citekb.ingest.document import Block, Document, Locator
from citekb.ingest.errors import ConfigError
from citekb.ingest.ids import doc_id_for_bytes
from citekb.retrieval.embed import Embedder
from citekb.retrieval.hit import Hit
from citekb.retrieval.indexing import prepare
from citekb.retrieval.store import DocumentRecord, Snapshot

CUTOFFS = (1, 5, 10)


@dataclass(frozen=True, slots=True)
class GoldQuestion:
    id: str
    lang: str
    question: str
    answers: tuple[str, ...]
    gold: tuple[Mapping[str, Any], ...]


def load_gold(path: Path) -> list[GoldQuestion]:
    questions = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            questions.append(GoldQuestion(
                id=str(raw.get("id") or f"line{number}"), lang=str(raw.get("lang") or "en"), question=raw["question"],
                answers=tuple(a for a in raw.get("answers") or () if isinstance(a, str)),
                gold=tuple(g for g in raw["gold"] if isinstance(g, dict) and g.get("file")),
            ))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path.name}:{number}: not a gold question ({exc}); need question and gold") from exc
    if not questions:
        raise ConfigError(f"{path.name}: no questions")
    return questions


def _name(path: object) -> str:
    return unicodedata.normalize("NFC", str(path or "").replace("\\", "/").rsplit("/", 1)[-1])


def _heading_parts(text: str) -> list[str]:
    return [unicodedata.normalize("NFKC", p).strip().casefold() for p in text.split(">") if p.strip()]


def matches(loc: Locator, gold: Mapping[str, Any]) -> bool:
    """Does a hit's (or citation's) locator point at this gold location?"""
    if _name(loc.source) != _name(gold.get("file")):
        return False
    page = gold.get("page")
    if isinstance(page, int) and not str(gold.get("file", "")).lower().endswith((".md", ".markdown")):
        if loc.page is None:
            return False
        end = loc.page_end if loc.page_end is not None else loc.page
        return loc.page <= page <= end and end - loc.page <= 1
    start, stop = gold.get("line_start"), gold.get("line_end") or gold.get("line_start")
    if isinstance(start, int) and loc.line_start is not None:
        return loc.line_start <= stop and start <= (loc.line_end or loc.line_start)
    want, have = _heading_parts(str(gold.get("heading") or "")), _heading_parts(loc.section_path)
    return bool(want) and have[-len(want):] == want


def rank_metrics(ranks: Sequence[int | None]) -> dict[str, float]:
    """hit@k (share of questions whose first match is within k) and MRR@10, from 1-based ranks."""
    n = len(ranks) or 1
    out = {f"hit@{k}": sum(r is not None and r <= k for r in ranks) / n for k in CUTOFFS}
    out["mrr@10"] = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    return out


def ndcg_at_10(ranked: Sequence[str], relevant: Mapping[str, int]) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:10]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:10]))
    return dcg / ideal if ideal else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


Search = Callable[[str, int], list[Hit]]


@dataclass
class GoldReport:
    search: dict[str, dict[str, float]] = field(default_factory=dict)  # per language: page-level metrics
    latency_ms: dict[str, float] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)  # ids of questions with no match in the top 10


def evaluate_gold(search: Search, questions: Sequence[GoldQuestion], k: int = 10) -> GoldReport:
    by_lang: dict[str, list[int | None]] = defaultdict(list)
    latency = []
    report = GoldReport()
    for q in questions:
        started = time.perf_counter()
        hits = search(q.question, k)
        latency.append((time.perf_counter() - started) * 1000)
        rank = next((i for i, h in enumerate(hits, 1) if any(matches(h.chunk.locator, g) for g in q.gold)), None)
        by_lang[q.lang].append(rank)
        if rank is None:
            report.misses.append(q.id)
    for lang, ranks in sorted(by_lang.items()):
        report.search[lang] = {**rank_metrics(ranks), "n": len(ranks)}
    report.search["all"] = {**rank_metrics([r for rs in by_lang.values() for r in rs]), "n": len(questions)}
    report.latency_ms = latency_summary(latency)
    return report


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    if not ordered:
        return {}
    return {"p50": ordered[len(ordered) // 2], "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]}


@dataclass(frozen=True, slots=True)
class BeirSet:
    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(folder: Path, split: str = "test") -> BeirSet:
    """A BEIR folder as documents (title as heading, text as one paragraph), queries and qrels;
    only queries with judgements are kept. A document's doc_id is its corpus _id."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels[row["query-id"]][row["corpus-id"]] = int(row["score"])
    queries = {}
    for line in (folder / "queries.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            if raw["_id"] in qrels:
                queries[raw["_id"]] = raw["text"]
    documents = []
    for line in (folder / "corpus.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            documents.append(_beir_document(str(raw["_id"]), raw.get("title") or "", raw.get("text") or ""))
    return BeirSet(documents=documents, queries=queries, qrels=dict(qrels))


def _beir_document(doc_id: str, title: str, text: str) -> Document:
    blocks = []
    offset = 0
    section = (title,) if title else ()
    for kind, body in (("heading", title), ("paragraph", text)):
        if body.strip():
            loc = Locator(doc_id=doc_id, source=doc_id, title=title, section=section, char_start=offset, char_end=offset + len(body))
            blocks.append(Block(text=body, locator=loc, kind=kind))
            offset += len(body) + 2
    return Document(doc_id=doc_id, source=doc_id, title=title, blocks=tuple(blocks))


def build_snapshot(documents: Iterable[Document], embedder: Embedder, cfg: ChunkingConfig = ChunkingConfig()) -> Snapshot:
    """An in-memory index of documents that never were files (BEIR corpora, tests)."""
    snapshot = Snapshot(model_id=embedder.model_id, dim=embedder.dim)
    for document in documents:
        chunks = chunk(document, cfg)
        if not chunks:
            continue
        record = DocumentRecord(doc_id=document.doc_id or doc_id_for_bytes(document.text.encode()), source=document.source,
                                path="", title=document.title, pages=None, chunks=len(chunks), ingested_at=time.time())
        snapshot.add(record, chunks, prepare(chunks, embedder))
    return snapshot


def evaluate_beir(search: Search, beir: BeirSet, k: int = 100) -> dict[str, float]:
    """nDCG@10, recall@10/100 and MRR@10 at document level (a document ranks by its best chunk)."""
    ndcg, r10, r100, rr = [], [], [], []
    latency = []
    for qid, text in beir.queries.items():
        started = time.perf_counter()
        hits = search(text, k)
        latency.append((time.perf_counter() - started) * 1000)
        ranked = list(dict.fromkeys(h.chunk.locator.doc_id for h in hits))
        relevant = beir.qrels[qid]
        ndcg.append(ndcg_at_10(ranked, relevant))
        r10.append(recall_at(ranked, relevant, 10))
        r100.append(recall_at(ranked, relevant, 100))
        first = next((i for i, d in enumerate(ranked[:10], 1) if relevant.get(d, 0) > 0), None)
        rr.append(1 / first if first else 0.0)
    n = len(ndcg) or 1
    return {"ndcg@10": sum(ndcg) / n, "recall@10": sum(r10) / n, "recall@100": sum(r100) / n, "mrr@10": sum(rr) / n,
            "n": len(ndcg), **{f"latency_{k}_ms": v for k, v in latency_summary(latency).items()}}
