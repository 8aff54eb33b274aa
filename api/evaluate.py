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
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from citekb.generation.answer import Answer
from citekb.ingest.chunking import chunk
from citekb.ingest.config import ChunkingConfig
from citekb.ingest.document import Block, Document, Locator
from citekb.ingest.errors import ConfigError
from citekb.ingest.ids import doc_id_for_bytes
from citekb.retrieval.config import RetrievalConfig
from citekb.retrieval.embed import Embedder
from citekb.retrieval.hit import Hit
from citekb.retrieval.indexing import ChunkRows, prepare
from citekb.retrieval.indexing import dense_units as unit_texts
from citekb.retrieval.rerank import Reranker
from citekb.retrieval.search import HybridSearcher
from citekb.retrieval.store import DocumentRecord, Snapshot
from tqdm import tqdm

T = TypeVar("T")

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
Answerer = Callable[[str, list[Hit]], Answer]  # the generator, over hits a search already found


# ---------------------------------------------------------------- answers: SQuAD-style F1

_MARKERS = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _strip_punct(text: str) -> str:
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))


def answer_tokens(text: str, lang: str) -> list[str]:
    """Tokens for answer F1: English as SQuAD (casefolded, punctuation and a/an/the dropped,
    whitespace-split); Chinese as characters (whitespace and punctuation dropped)."""
    text = _strip_punct(unicodedata.normalize("NFKC", _MARKERS.sub(" ", text)).casefold())
    if lang == "zh":
        return [ch for ch in text if not ch.isspace()]
    return _ARTICLES.sub(" ", text).split()


def answer_f1(prediction: str, answers: Sequence[str], lang: str) -> float:
    """The best token F1 of prediction against any of the gold answers (0 without answers)."""
    predicted = answer_tokens(prediction, lang)
    best = 0.0
    for gold in answers:
        wanted = answer_tokens(gold, lang)
        common = sum((Counter(predicted) & Counter(wanted)).values())
        if common:
            precision, recall = common / len(predicted), common / len(wanted)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(text: str, answers: Sequence[str], lang: str) -> bool:
    """Does text hold one of the answers (compared as answer_tokens, so case, punctuation and,
    for Chinese, spacing do not matter)?"""
    joiner = "" if lang == "zh" else " "
    haystack = joiner + joiner.join(answer_tokens(text, lang)) + joiner
    return any(tokens and (joiner + joiner.join(tokens) + joiner) in haystack
               for tokens in (answer_tokens(a, lang) for a in answers))


# ---------------------------------------------------------------- gold questions

LEVELS = ("page", "chunk")


def _gold_ranking(hits: Sequence[Hit], q: GoldQuestion, level: str) -> list[set[int]]:
    """For each hit, the gold entries it matches. At page level a hit matches by location; at
    chunk level its text must also hold one of the answers (the passage that answers, not just
    its page). Questions without answers match by location at both levels."""
    out = []
    for h in hits:
        found = {i for i, g in enumerate(q.gold) if matches(h.chunk.locator, g)}
        if found and level == "chunk" and q.answers and not contains_answer(h.chunk.text, q.answers, q.lang):
            found = set()
        out.append(found)
    return out


def question_metrics(matched: Sequence[set[int]], n_gold: int) -> dict[str, float]:
    """One question's metrics from the gold entries each ranked hit matches. hit@k and MRR count
    the first hit matching any entry (each entry is an acceptable place); recall@k is the share
    of entries matched within k; nDCG@10 gains 1 for each entry the first time it is matched."""
    rank = next((i for i, m in enumerate(matched, 1) if m), None)
    out = {f"hit@{k}": float(rank is not None and rank <= k) for k in CUTOFFS}
    out["mrr@10"] = 1 / rank if rank is not None and rank <= 10 else 0.0
    seen: set[int] = set()
    dcg = 0.0
    for i, m in enumerate(matched[:10]):
        if m - seen:
            dcg += 1 / math.log2(i + 2)
        seen |= m
        if i + 1 in CUTOFFS:
            out[f"recall@{i + 1}"] = len(seen) / n_gold if n_gold else 0.0
    for k in CUTOFFS:
        out.setdefault(f"recall@{k}", len(seen) / n_gold if n_gold else 0.0)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(n_gold, 10)))
    out["ndcg@10"] = dcg / ideal if ideal else 0.0
    return out


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    keys = list(rows[0]) if rows else []
    return {key: sum(r[key] for r in rows) / len(rows) for key in keys}


def _ask_metrics(answer: Answer, q: GoldQuestion) -> dict[str, float]:
    cited = [any(matches(c.locator, g) for g in q.gold) for c in answer.citations]
    out = {"answer_f1": answer_f1(answer.text, q.answers, q.lang),
           "answer_contains_gold": float(bool(q.answers) and contains_answer(answer.text, q.answers, q.lang)),
           "cites_present": float(bool(cited))}
    if cited:
        out["cited_page_accuracy"] = sum(cited) / len(cited)
    return out


@dataclass
class GoldReport:
    page: dict[str, dict[str, float]] = field(default_factory=dict)  # per language and "all"
    chunk: dict[str, dict[str, float]] = field(default_factory=dict)
    ask: dict[str, dict[str, float]] = field(default_factory=dict)  # empty without an answerer
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # "search", "ask": p50, p95
    misses: list[str] = field(default_factory=list)  # ids of questions with no page match in the top k

    @property
    def search(self) -> dict[str, dict[str, float]]:
        return self.page

    def as_dict(self) -> dict[str, Any]:
        return {"page": self.page, "chunk": self.chunk, "ask": self.ask, "latency_ms": self.latency_ms, "misses": self.misses}


def evaluate_gold(search: Search, questions: Sequence[GoldQuestion], k: int = 10, answer: Answerer | None = None,
                  ask_k: int = 5, progress: Callable[[Iterable[GoldQuestion]], Iterable[GoldQuestion]] = iter) -> GoldReport:
    """Search each question (top k) and score the ranking at page and chunk level; with answer,
    also answer it from its top ask_k hits and score the answer and its citations."""
    rows: dict[str, dict[str, list[dict[str, float]]]] = {level: defaultdict(list) for level in LEVELS}
    asked: dict[str, list[dict[str, float]]] = defaultdict(list)
    latency: dict[str, list[float]] = defaultdict(list)
    report = GoldReport()
    for q in progress(questions):
        started = time.perf_counter()
        hits = search(q.question, k)
        latency["search"].append((time.perf_counter() - started) * 1000)
        for level in LEVELS:
            rows[level][q.lang].append(question_metrics(_gold_ranking(hits, q, level), len(q.gold)))
        if not rows["page"][q.lang][-1]["hit@10"]:
            report.misses.append(q.id)
        if answer is not None:
            started = time.perf_counter()
            result = answer(q.question, hits[:ask_k])
            latency["ask"].append((time.perf_counter() - started) * 1000)
            asked[q.lang].append(_ask_metrics(result, q))
    for level in LEVELS:
        by_lang = rows[level]
        table = {lang: {**_mean(r), "n": len(r)} for lang, r in sorted(by_lang.items())}
        table["all"] = {**_mean([m for r in by_lang.values() for m in r]), "n": len(questions)}
        setattr(report, level, table)
    pooled = [m for per_lang in asked.values() for m in per_lang]
    for lang, answered in sorted(asked.items()) + ([("all", pooled)] if pooled else []):
        cited = [m["cited_page_accuracy"] for m in answered if "cited_page_accuracy" in m]
        report.ask[lang] = {**_mean([{k: v for k, v in m.items() if k != "cited_page_accuracy"} for m in answered]),
                            "cited_page_accuracy": sum(cited) / len(cited) if cited else 0.0, "n": len(answered)}
    report.latency_ms = {name: latency_summary(ms) for name, ms in latency.items()}
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
    for need in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / need).is_file():
            raise ConfigError(f"{folder}: not a BEIR folder, {need} is missing")
    try:
        return _read_beir(folder, split)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{folder}: cannot read the BEIR files ({type(exc).__name__}: {exc})") from exc


def _read_beir(folder: Path, split: str) -> BeirSet:
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
    if not queries:
        raise ConfigError(f"{folder}: no query in queries.jsonl has judgements in qrels/{split}.tsv")
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


DENSE_UNITS = ("sentence", "chunk")


def build_snapshot(documents: Iterable[Document], embedder: Embedder, cfg: ChunkingConfig | None = None,
                   dense_units: str = "sentence", show_progress: bool = False) -> Snapshot:
    """An in-memory index of documents that never were files (BEIR corpora, tests). dense_units
    "sentence" indexes as ingest does (a vector per sentence); "chunk" one vector per chunk,
    several times fewer to embed for a large corpus. All texts are embedded in one batched call."""
    if dense_units not in DENSE_UNITS:
        raise ConfigError(f"unknown dense units {dense_units!r}; choose sentence or chunk")
    snapshot = Snapshot(model_id=embedder.model_id, dim=embedder.dim)
    chunked = [(d, c) for d in documents if (c := chunk(d, cfg or ChunkingConfig()))]
    everything = [c for _, cs in chunked for c in cs]
    rows = prepare(everything, embedder, unit_texts if dense_units == "sentence" else lambda c: [c.text], show_progress)
    first_vector = np.searchsorted(rows.owners, np.arange(len(everything) + 1))
    start = 0
    for document, chunks in chunked:
        stop = start + len(chunks)
        a, b = first_vector[start], first_vector[stop]
        part = ChunkRows(vectors=rows.vectors[a:b], owners=rows.owners[a:b] - start, terms=rows.terms[start:stop])
        record = DocumentRecord(doc_id=document.doc_id or doc_id_for_bytes(document.text.encode()), source=document.source,
                                path="", title=document.title, pages=None, chunks=len(chunks), ingested_at=time.time())
        snapshot.add(record, chunks, part)
        start = stop
    return snapshot


def evaluate_beir(search: Search, beir: BeirSet, k: int = 100,
                  progress: Callable[[Iterable[str]], Iterable[str]] = iter) -> dict[str, dict[str, float]]:
    """hit@k, recall@k, MRR@10 and nDCG@10 (graded by the qrels) at document level (a document
    ranks by its best chunk) and at chunk level (each chunk counts as its document's grade,
    repeats and all), with search latency."""
    levels: dict[str, list[dict[str, float]]] = {"doc": [], "chunk": []}
    latency = []
    for qid in progress(beir.queries):
        started = time.perf_counter()
        hits = search(beir.queries[qid], k)
        latency.append((time.perf_counter() - started) * 1000)
        relevant = beir.qrels[qid]
        chunk_docs = [h.chunk.locator.doc_id for h in hits]
        for level, ranked in (("doc", list(dict.fromkeys(chunk_docs))), ("chunk", chunk_docs)):
            first = next((i for i, d in enumerate(ranked, 1) if relevant.get(d, 0) > 0), None)
            row = {f"hit@{c}": float(first is not None and first <= c) for c in CUTOFFS}
            row.update({f"recall@{c}": recall_at(list(dict.fromkeys(ranked[:c])), relevant, c) for c in (*CUTOFFS, 100)})
            row["mrr@10"] = 1 / first if first is not None and first <= 10 else 0.0
            row["ndcg@10"] = ndcg_at_10(ranked, relevant) if level == "doc" else _ndcg_repeats(ranked, relevant)
            levels[level].append(row)
    return {**{level: {"all": {**_mean(rows), "n": len(rows)}} for level, rows in levels.items()},
            "latency_ms": latency_summary(latency)}


def _ndcg_repeats(ranked: Sequence[str], relevant: Mapping[str, int]) -> float:
    """nDCG@10 where every chunk of a relevant document gains its grade, capped at 1."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:10]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:10]))
    return min(1.0, dcg / ideal) if ideal else 0.0


# ---------------------------------------------------------------- configurations side by side

BASES = {"bm25": {"bm25": 1.0, "dense": 0.0}, "dense": {"bm25": 0.0, "dense": 1.0}, "hybrid": None}  # None: as configured
RERANK_SUFFIX = "+rerank"


def parse_configs(spec: str) -> list[str]:
    """"bm25,dense,hybrid,hybrid+rerank" -> the names, checked: each a leg (bm25, dense, or
    hybrid, the configured fusion of both), optionally followed by +rerank."""
    names = [name.strip().lower() for name in spec.split(",") if name.strip()]
    if not names:
        raise ConfigError("--compare needs at least one configuration, e.g. bm25,hybrid")
    for name in names:
        if name.removesuffix(RERANK_SUFFIX) not in BASES:
            raise ConfigError(f"unknown configuration {name!r}; use bm25, dense or hybrid, each optionally with +rerank")
    return list(dict.fromkeys(names))


def configured(name: str, base: RetrievalConfig) -> RetrievalConfig:
    """The retrieval config a configuration name stands for, starting from the user's own."""
    weights = BASES[name.removesuffix(RERANK_SUFFIX)]
    return replace(base, weights=dict(weights or base.weights))


def searchers(names: Sequence[str], embedder: Embedder, base: RetrievalConfig,
              reranker: Callable[[], Reranker]) -> dict[str, HybridSearcher]:
    """One searcher per configuration; the reranker is built once, and only if one is asked for."""
    built: Reranker | None = None
    out = {}
    for name in names:
        if name.endswith(RERANK_SUFFIX) and built is None:
            built = reranker()
        out[name] = HybridSearcher(embedder, configured(name, base), built if name.endswith(RERANK_SUFFIX) else None)
    return out


def _bar(total: int, desc: str, show: bool) -> Callable[[Iterable[T]], Iterable[T]]:
    return lambda items: tqdm(items, total=total, desc=desc, unit="q", disable=not show, file=sys.stderr, leave=False)


def _warm_up(snapshot: Snapshot, by_name: Mapping[str, HybridSearcher], query: str) -> None:
    """One untimed search per configuration: the first call into a model pays for its set-up."""
    for searcher in by_name.values() if query.strip() else ():
        searcher.search(snapshot, query, 10)


def compare_gold(snapshot: Snapshot, questions: Sequence[GoldQuestion], by_name: Mapping[str, HybridSearcher],
                 answer: Answerer | None = None, k: int = 10, ask_k: int = 5, show_progress: bool = False) -> dict[str, Any]:
    """Every configuration's GoldReport (as a dict) over the same snapshot and questions."""
    _warm_up(snapshot, by_name, questions[0].question if questions else "")
    return {name: evaluate_gold(lambda q, n, s=searcher: s.search(snapshot, q, n), questions, k=k, answer=answer,  # type: ignore[misc]
                                ask_k=ask_k, progress=_bar(len(questions), name, show_progress)).as_dict()
            for name, searcher in by_name.items()}


def compare_beir(snapshot: Snapshot, beir: BeirSet, by_name: Mapping[str, HybridSearcher], k: int = 100,
                 show_progress: bool = False) -> dict[str, Any]:
    _warm_up(snapshot, by_name, next(iter(beir.queries.values()), ""))
    return {name: evaluate_beir(lambda q, n, s=searcher: s.search(snapshot, q, n), beir, k=k,  # type: ignore[misc]
                                progress=_bar(len(beir.queries), name, show_progress))
            for name, searcher in by_name.items()}


def table(results: Mapping[str, Mapping[str, Any]], langs: Sequence[str] = ("all",)) -> list[tuple[str, list[float | None]]]:
    """Rows (label, one value per configuration) for printing results side by side."""
    names = list(results)
    first = results[names[0]]
    rows: list[tuple[str, list[float | None]]] = []

    def row(label: str, get: Callable[[Mapping[str, Any]], Any]) -> None:
        values = []
        for name in names:
            try:
                values.append(float(get(results[name])))
            except (KeyError, TypeError):
                values.append(None)
        if any(v is not None for v in values):
            rows.append((label, values))

    levels = [level for level in ("doc", "page", "chunk") if level in first]
    metrics = ("hit@1", "hit@5", "recall@10", "mrr@10", "ndcg@10")  # the JSON has hit@10 and recall@1/5 too
    for level in levels:
        for lang in [lang for lang in langs if lang in first[level]]:
            for metric in metrics:
                row(f"{level} {metric} {lang}", lambda r, lv=level, la=lang, m=metric: r[lv][la][m])
    if "recall@100" in first.get("doc", {}):
        row("doc recall@100", lambda r: r["doc"]["recall@100"])
    for lang in [lang for lang in langs if lang in first.get("ask", {})]:
        for metric in ("cited_page_accuracy", "answer_f1", "answer_contains_gold"):
            row(f"ask {metric} {lang}", lambda r, la=lang, m=metric: r["ask"][la][m])
    latency = first.get("latency_ms", {})
    for stage in ("search", "ask") if "search" in latency else ("",):
        for q in ("p50", "p95"):
            label = f"{stage} latency {q} ms".strip()
            row(label, lambda r, st=stage, qq=q: r["latency_ms"][st][qq] if st else r["latency_ms"][qq])
    return rows
