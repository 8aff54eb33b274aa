"""Citation verification, for every backend: each sentence of an answer is scored against the
passages its [n] markers cite, and flagged (or dropped) when none of them says it.

A cited passage supports a sentence when one of the passage's sentences (or two adjacent ones)
holds enough of the sentence's term weight, terms weighted by how rare they are among the
retrieved passages (so "the" and the topic everyone shares count little and a number or a name
counts much), and the embedder agrees they are related, or when the embedder finds the two
close in meaning. A supported citation is narrowed to the passage sentences that support it, so
a model citing a whole passage still gets a page and lines; the citations left are renumbered
[1], [2], ... in the order they appear.

The same sentence splitting, term weighting and cosine serve the extractive generator, which
scores passage sentences against the question with them."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from citekb.ingest.document import Chunk
from citekb.ingest.sentences import split_sentences
from citekb.retrieval.analyze import analyze, query_language
from citekb.retrieval.embed import Embedder

from .answer import Answer, Citation, SentenceSupport
from .base import NOT_FOUND
from .config import VerifyConfig

# "[1]", "[1, 3]", "[2，4]": one group of citation markers.
MARKERS = re.compile(r"\[(\d+(?:\s*[,，;；、]\s*\d+)*)\]")
_LEADING_MARKERS = re.compile(r"(?:\s*\[\d+(?:\s*[,，;；、]\s*\d+)*\])+")
# A claim ends at its markers: "A [1] B [2]" is two claims even without a full stop between.
_AFTER_MARKERS = re.compile(r"\[\d+(?:\s*[,，;；、]\s*\d+)*\](?=\s+[^\W_])")


# --------------------------------------------------------------------------- shared scoring

@dataclass(frozen=True, slots=True)
class PassageSentence:
    """A sentence of a retrieved chunk: [start, end) in chunk.text, and its analyzed terms."""

    hit_rank: int
    chunk: Chunk
    start: int
    end: int
    terms: frozenset[str]

    @property
    def text(self) -> str:
        return self.chunk.text[self.start:self.end]


def passage_sentences(chunk: Chunk, rank: int = 0) -> list[PassageSentence]:
    """The sentences of a chunk that have terms, never across its block boundaries (a heading
    has no full stop) and never a heading itself."""
    out = []
    for span in chunk.spans or ():
        if span.kind == "heading":
            continue
        block = chunk.text[span.start:span.end]
        for start, end in split_sentences(block):
            terms = frozenset(analyze(block[start:end]))
            if terms:
                out.append(PassageSentence(rank, chunk, span.start + start, span.start + end, terms))
    if not chunk.spans:  # a chunk built without block spans: its text is one block
        for start, end in split_sentences(chunk.text):
            terms = frozenset(analyze(chunk.text[start:end]))
            if terms:
                out.append(PassageSentence(rank, chunk, start, end, terms))
    return out


def term_weights(terms: Iterable[str], sentences: Sequence[PassageSentence]) -> dict[str, float]:
    """An idf weight for each term, over sentences: a term in every sentence says little about
    which one matches, a term in none (a claim's invented detail) weighs most."""
    df = Counter(t for s in sentences for t in s.terms)
    return {t: math.log(1 + len(sentences) / (1 + df[t])) for t in set(terms)}


def overlap(weights: Mapping[str, float], terms: frozenset[str]) -> float:
    """The share of the total weight whose terms are in terms; 0 for no weight."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in terms) / total if total else 0.0


def cosines(embedder: Embedder | None, text: str, others: Sequence[str]) -> list[float] | None:
    """Cosine of each of others to text; None without an embedder, or for text in a language
    the embedder does not know (its cosines would be noise)."""
    if embedder is None or not others or query_language(text) not in embedder.languages:
        return None
    vectors = embedder.embed([text, *others])
    return [float(v) for v in vectors[1:] @ vectors[0]]


# --------------------------------------------------------------------------- answer sentences

def answer_sentences(text: str) -> list[tuple[int, int]]:
    """[start, end) of each claim of an answer with its markers: sentences (English or Chinese),
    a marker group that opens a sentence given back to the one before ("A. [1] B." is "A. [1]"
    and "B."), and a sentence split after a marker group that more text follows."""
    spans: list[tuple[int, int]] = []
    for start, end in split_sentences(text):
        lead = _LEADING_MARKERS.match(text, start)
        if lead and spans and lead.end() <= end:
            spans[-1] = (spans[-1][0], lead.end())
            start = lead.end()
            while start < end and text[start].isspace():
                start += 1
            if start >= end:
                continue
        cut = start
        for match in _AFTER_MARKERS.finditer(text, start, end):
            spans.append((cut, match.end()))
            cut = match.end()
            while cut < end and text[cut].isspace():
                cut += 1
        if cut < end:
            spans.append((cut, end))
    return spans


def marker_numbers(text: str) -> list[int]:
    """The [n] numbers in text, in order, repeats kept."""
    return [int(n) for group in MARKERS.findall(text) for n in re.split(r"[,，;；、]", group)]


@dataclass(frozen=True, slots=True)
class _Verdict:
    ok: bool
    score: float
    window: tuple[int, int] | None  # the best supporting [start, end) in the cited chunk


def verify(answer: Answer, embedder: Embedder | None, cfg: VerifyConfig = VerifyConfig(),
           question: str | None = None) -> Answer:
    """answer with one SentenceSupport per sentence; with cfg.mode "drop", without the citations
    that do not support their sentence and the sentences left with none (NOT_FOUND, grounded
    False, if nothing is left). Citations are renumbered in order of appearance and narrowed
    to the passage sentences that support them. Mode "off", or an ungrounded answer: unchanged.
    With question and cfg.min_relevance, a sentence that (with what supports it) is not about
    the question counts as unsupported too (see relevance)."""
    if cfg.mode == "off" or not answer.grounded or not answer.text.strip():
        return answer
    spans = answer_sentences(answer.text)
    claims = [MARKERS.sub(" ", answer.text[a:b]).strip() for a, b in spans]
    numbers = [marker_numbers(answer.text[a:b]) for a, b in spans]
    scorer = _Scorer(answer, embedder, cfg)
    verdicts = scorer.score(claims, numbers)
    if question is not None and cfg.min_relevance > 0:
        for i, (lex, sim) in enumerate(relevance(question, claims, verdicts, scorer)):
            if lex < cfg.min_relevance and (sim is None or sim < cfg.min_relevance_similarity):
                verdicts[i] = {n: replace(v, ok=False) for n, v in verdicts[i].items()}

    keep = [[n for n in ns if cfg.mode == "flag" or verdicts[i][n].ok] for i, ns in enumerate(numbers)]
    kept = [i for i in range(len(spans)) if cfg.mode == "flag" or keep[i]]
    if not kept:
        return Answer(text=NOT_FOUND, citations=(), hits=answer.hits, grounded=False)
    # A marker naming no citation points at nothing: it goes from the text, and flags its sentence.
    cited = {c.n for c in answer.citations}
    renumber: dict[int, int] = {}
    for i in kept:
        for n in keep[i]:
            if n in cited:
                renumber.setdefault(n, len(renumber) + 1)
    parts: list[str] = []
    supports: list[SentenceSupport] = []
    for i in kept:
        a, b = spans[i]
        if parts:
            parts.append(answer.text[spans[i - 1][1]:a])  # the space (if any) before this sentence
        start = sum(len(p) for p in parts)
        sentence = _rewrite(answer.text[a:b], renumber, set(keep[i]))
        parts.append(sentence)
        ns = [n for n in numbers[i] if n in keep[i]]
        scores = [verdicts[i][n].score for n in ns]
        supported = bool(ns) and all(verdicts[i][n].ok for n in ns)
        supports.append(SentenceSupport(start, start + len(sentence), tuple(renumber[n] for n in dict.fromkeys(ns) if n in renumber),
                                        supported, round(min(scores), 4) if scores else 0.0))
    citations = _renumbered_citations(answer, renumber, verdicts, keep)
    return replace(answer, text="".join(parts), citations=citations, sentences=tuple(supports))


def _rewrite(sentence: str, renumber: Mapping[int, int], keep: set[int]) -> str:
    """sentence with each marker renumbered, markers not kept removed (with the space before)."""

    def sub(match: re.Match[str]) -> str:
        old = [int(n) for n in re.split(r"[,，;；、]", match.group(1))]
        new = [renumber[n] for n in old if n in keep and n in renumber]
        if new == old:
            return match.group()
        return "[" + ", ".join(str(n) for n in dict.fromkeys(new)) + "]" if new else ""

    out = MARKERS.sub(sub, sentence)
    return re.sub(r"\s+(?=[.!?。！？,，;；]|$)", "", re.sub(r"[ \t]{2,}", " ", out)) if out != sentence else out


def sentence_relevance(answer: Answer, question: str, embedder: Embedder | None,
                       cfg: VerifyConfig = VerifyConfig()) -> list[tuple[float, float | None]]:
    """relevance() of each sentence of a grounded answer to question (empty when not grounded):
    what the min_relevance check in verify looks at, for tuning it."""
    if not answer.grounded:
        return []
    spans = answer_sentences(answer.text)
    claims = [MARKERS.sub(" ", answer.text[a:b]).strip() for a, b in spans]
    scorer = _Scorer(answer, embedder, cfg)
    verdicts = scorer.score(claims, [marker_numbers(answer.text[a:b]) for a, b in spans])
    return relevance(question, claims, verdicts, scorer)


def relevance(question: str, claims: Sequence[str], verdicts: Sequence[Mapping[int, _Verdict]],
              scorer: _Scorer) -> list[tuple[float, float | None]]:
    """How much each claim is about the question: the share of the question's term weight in
    the claim and the passage sentences that best support it, and the embedder's cosine of
    claim and question (None without an embedder or in a language it does not know)."""
    weights = term_weights(analyze(question), scorer.context)
    sims = cosines(scorer.embedder, question, list(claims)) if claims else None
    out = []
    for i, claim in enumerate(claims):
        terms = set(analyze(claim))
        for n, verdict in verdicts[i].items():
            if verdict.ok and verdict.window is not None:
                terms |= scorer.window_terms(n, verdict.window)
        out.append((overlap(weights, frozenset(terms)), sims[i] if sims is not None else None))
    return out


def _renumbered_citations(answer: Answer, renumber: Mapping[int, int], verdicts: list[dict[int, _Verdict]],
                          keep: list[list[int]]) -> tuple[Citation, ...]:
    by_n = {c.n: c for c in answer.citations}
    chunks = {h.chunk.chunk_id: h.chunk for h in answer.hits}
    out = []
    for old, new in sorted(renumber.items(), key=lambda item: item[1]):
        citation = by_n[old]
        windows = [v[old].window for i, v in enumerate(verdicts) if old in keep[i] and old in v and v[old].ok and v[old].window]
        chunk = chunks.get(citation.chunk_id)
        if windows and chunk is not None:
            start, end = min(w[0] for w in windows if w), max(w[1] for w in windows if w)
            if chunk.text[start:end] != citation.quote:
                citation = replace(citation, locator=chunk.locate(start, end), quote=chunk.text[start:end])
        out.append(replace(citation, n=new))
    return tuple(out)


class _Scorer:
    """Scores claims against the windows (passage sentences and adjacent pairs) of the chunks
    their citations quote, embedding everything in one call."""

    def __init__(self, answer: Answer, embedder: Embedder | None, cfg: VerifyConfig) -> None:
        self.cfg = cfg
        self.embedder = embedder
        self.by_n = {c.n: c for c in answer.citations}
        chunks = {h.chunk.chunk_id: h.chunk for h in answer.hits}
        self.context = [s for rank, h in enumerate(answer.hits) for s in passage_sentences(h.chunk, rank)]
        self.windows: dict[int, list[tuple[int, int, frozenset[str], str]]] = {}
        for n, citation in self.by_n.items():
            chunk = chunks.get(citation.chunk_id)
            if chunk is not None:
                self.windows[n] = _windows(chunk, citation.quote)

    def score(self, claims: Sequence[str], numbers: Sequence[Sequence[int]]) -> list[dict[int, _Verdict]]:
        terms_of = [analyze(claim) for claim in claims]
        # Only windows sharing a term with a claim citing them are embedded: one sharing none has
        # no overlap to support it, and embedding every sentence of every cited passage is most
        # of the cost of verifying a model-written answer.
        texts = sorted({w[3] for terms, ns in zip(terms_of, numbers) for n in ns for w in self.windows.get(n, ())
                        if not w[2].isdisjoint(terms)})
        similarity = self._similarities(claims, texts)
        out = []
        for i, (claim, ns) in enumerate(zip(claims, numbers)):
            claim_terms = terms_of[i]
            weights = term_weights(claim_terms, self.context)
            quoted = _normal(claim).rstrip(".!?。！？;；:：,，") if claim_terms else ""
            verdicts = {}
            for n in dict.fromkeys(ns):
                best = _Verdict(False, 0.0, None)
                for start, end, terms, text in self.windows.get(n, ()):
                    lex = overlap(weights, terms)
                    sim = similarity[i].get(text) if similarity is not None else None
                    ok = lex >= self.cfg.min_overlap if sim is None else (
                        (lex >= self.cfg.min_overlap and sim >= self.cfg.min_related) or sim >= self.cfg.min_similarity)
                    score = lex if sim is None else (lex + max(sim, 0.0)) / 2
                    if quoted and quoted in _normal(text):
                        # A verbatim quote is the best support there is, however short: a copied
                        # span ("1589") is too short for the embedder to find it related.
                        ok, score = True, 1.0
                    if (ok, score) > (best.ok, best.score):
                        best = _Verdict(ok, min(score, 1.0), (start, end))
                verdicts[n] = best
            out.append(verdicts)
        return out

    def window_terms(self, n: int, window: tuple[int, int]) -> frozenset[str]:
        return next((w[2] for w in self.windows.get(n, ()) if (w[0], w[1]) == window), frozenset())

    def _similarities(self, claims: Sequence[str], texts: Sequence[str]) -> list[dict[str, float]] | None:
        if self.embedder is None or not texts or not claims:
            return None
        if any(query_language(c) not in self.embedder.languages for c in claims if c):
            return None  # one language judged one way for the whole answer
        vectors = self.embedder.embed([*claims, *texts])
        sims = vectors[: len(claims)] @ vectors[len(claims):].T
        return [{t: float(sims[i, j]) for j, t in enumerate(texts)} for i in range(len(claims))]


def _normal(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _windows(chunk: Chunk, quote: str) -> list[tuple[int, int, frozenset[str], str]]:
    """The sentences of chunk inside the quoted text, and each two adjacent ones together (a
    claim may draw on both): (start, end, terms, text). A quote not found in the chunk, or within
    one sentence, is its own one window."""
    offset = chunk.text.find(quote) if quote else -1
    if offset < 0:
        offset, quote = 0, chunk.text
    inside = [s for s in passage_sentences(chunk) if s.start >= offset and s.end <= offset + len(quote)]
    if not inside:
        terms = frozenset(analyze(quote))
        return [(offset, offset + len(quote), terms, quote)] if terms else []
    out = [(s.start, s.end, s.terms, s.text) for s in inside]
    for first, second in zip(inside, inside[1:]):
        out.append((first.start, second.end, first.terms | second.terms, chunk.text[first.start:second.end]))
    return out
