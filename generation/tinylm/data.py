"""Training data for TinyLM: the corpus as one token stream (stage 1), and grounded QA examples
as (tokens, prompt length) pairs whose answer is a span of the true sentence plus the marker of
its hit (stage 2). The prompt is built as when answering: the question's best evidence
sentences among what a search for the question returns (prompt.evidence)."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from citekb.ingest.document import Chunk
from citekb.retrieval.analyze import analyze
from citekb.retrieval.hit import Hit
from citekb.retrieval.keyword import Bm25Index

from .prompt import Passage, encode_range, evidence, prompt_with_flags, sentences
from .synth import Example, synthesize
from .tokenizer import TinyTokenizer

Search = Callable[[str, int], Sequence[Hit]]


@dataclass(frozen=True, slots=True)
class SftExample:
    tokens: tuple[int, ...]  # prompt, then answer span, marker and <eos>
    prompt_len: int  # loss only on tokens[prompt_len:]
    flags: tuple[int, ...] = ()  # the prompt's match flags (prompt.prompt_with_flags); the answer's are 0


def keyword_search(chunks: Sequence[Chunk], keyword: Bm25Index) -> Search:
    """BM25 alone over the index's chunks: distractors for thousands of training questions
    without embedding each (a hybrid search costs a MiniLM pass per query)."""

    def search(query: str, k: int) -> list[Hit]:
        return [Hit(chunks[row], score, {"bm25": score}) for row, score in keyword.search(analyze(query), k)]

    return search


def token_stream(tokenizer: TinyTokenizer, texts: Sequence[str]) -> torch.Tensor:
    """All texts encoded and joined, each ended by <eos>."""
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer.encode(text))
        ids.append(tokenizer.eos)
    return torch.tensor(ids, dtype=torch.long)


def grounded_examples(tokenizer: TinyTokenizer, chunks: Sequence[Chunk], search: Search, *, passages: int,
                      sentences: int, sentence_tokens: int, seq_len: int, per_sentence: int, max_examples: int, seed: int,
                      show_progress: bool = False) -> list[SftExample]:
    """Synthesised questions on chunks, each prompted with the best evidence sentences among the
    `passages` hits a search for the question returns (the question's own chunk among them)."""
    rng = random.Random(seed)
    synthesized = [e for c in chunks for e in synthesize(c, rng, per_sentence)]
    rng.shuffle(synthesized)
    synthesized = synthesized[:max_examples]
    out = []
    for example in tqdm(synthesized, desc="grounded examples", unit="q", disable=not show_progress, file=sys.stderr, leave=False):
        # The hits a search for the question returns, in its order, as when answering: the true
        # chunk ranks where retrieval ranks it. When the search misses it, it takes a random place.
        hits = list({h.chunk.chunk_id: h.chunk for h in search(example.question, passages)}.values())[:passages]
        if all(c.chunk_id != example.chunk.chunk_id for c in hits):
            hits = hits[: passages - 1]
            hits.insert(rng.randrange(len(hits) + 1), example.chunk)
        built = build_example(tokenizer, example, hits, sentences, sentence_tokens, seq_len, rng)
        if built is not None:
            out.append(built)
    return out


def build_example(tokenizer: TinyTokenizer, example: Example, hits: Sequence[Chunk], count: int, sentence_tokens: int,
                  seq_len: int, rng: random.Random) -> SftExample | None:
    """The example's prompt: the count best evidence sentences of hits (which hold its chunk),
    with the true sentence where the ranking puts it, or at a random place when the ranking
    leaves it out; None when the answer does not fit its sentence's tokens or the whole seq_len."""
    hit = next(i for i, c in enumerate(hits) if c.chunk_id == example.chunk.chunk_id)
    context = evidence(tokenizer, hits, example.question, count=count, sentence_tokens=sentence_tokens)
    position = next((i for i, p in enumerate(context) if p.hit == hit
                     and None not in answer_tokens(p, example.answer_start, example.answer_end)), None)
    if position is None:
        start, end = sentences(example.chunk)[example.sentence]
        context = context[: count - 1]
        position = rng.randrange(len(context) + 1)
        context.insert(position, encode_range(tokenizer, example.chunk, start, end, sentence_tokens, hit))
    true = context[position]
    first, last = answer_tokens(true, example.answer_start, example.answer_end)
    if first is None or last is None:
        return None
    tokens, flags = prompt_with_flags(tokenizer, context, example.question)
    prompt_len = len(tokens)
    tokens += [*true.tokens[first:last], tokenizer.markers[hit], tokenizer.eos]
    if len(tokens) > seq_len + 1:
        return None
    return SftExample(tuple(tokens), prompt_len, tuple(flags))


def answer_tokens(passage: Passage, start: int, end: int) -> tuple[int | None, int | None]:
    """[first, last) of the passage tokens covering chunk characters [start, end); None when
    the window does not hold the whole answer."""
    inside = [i for i, (a, b) in enumerate(passage.offsets) if a < end and start < b]
    if not inside or passage.offsets[inside[0]][0] > start or passage.offsets[inside[-1]][1] < end:
        return None, None
    return inside[0], inside[-1] + 1


# inputs, targets, match flags, and per row the tokens the loss is over (None: all)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]


def lm_batch(stream: torch.Tensor, batch_size: int, seq_len: int, rng: random.Random) -> Batch:
    """batch_size random windows of the stream: inputs, next-token targets and flags (all 0)."""
    length = min(seq_len, len(stream) - 1)
    starts = [rng.randrange(len(stream) - length) for _ in range(batch_size)]
    x = torch.stack([stream[s:s + length] for s in starts])
    y = torch.stack([stream[s + 1:s + 1 + length] for s in starts])
    return x, y, torch.zeros_like(x), None


def sft_batch(examples: Sequence[SftExample], batch_size: int, pad: int, rng: random.Random, *, vocab_size: int = 0,
              sep: int = -1, eos: int = -1) -> Batch:
    """batch_size random examples, right-padded: inputs, targets (-100 outside the answers), the
    prompts' match flags and, with vocab_size, the answer's candidates per row: the tokens of the
    prompt after sep (the evidence and its markers) and eos, which is all copy-constrained
    decoding ever allows."""
    chosen = [examples[rng.randrange(len(examples))] for _ in range(batch_size)]
    length = max(len(e.tokens) for e in chosen) - 1
    x = torch.full((batch_size, length), pad, dtype=torch.long)
    y = torch.full((batch_size, length), -100, dtype=torch.long)
    f = torch.zeros((batch_size, length), dtype=torch.long)
    c = torch.zeros((batch_size, vocab_size), dtype=torch.bool) if vocab_size else None
    for row, e in enumerate(chosen):
        tokens = torch.tensor(e.tokens, dtype=torch.long)
        x[row, :len(tokens) - 1] = tokens[:-1]
        y[row, e.prompt_len - 1:len(tokens) - 1] = tokens[e.prompt_len:]
        f[row, :len(e.flags)] = torch.tensor(e.flags, dtype=torch.long)
        if c is not None:
            context = e.tokens[e.tokens.index(sep) + 1:e.prompt_len] if sep in e.tokens[:e.prompt_len] else e.tokens[:e.prompt_len]
            c[row, list(context)] = True
            c[row, eos] = True
            c[row, list(e.tokens[e.prompt_len:])] = True  # the answer is always a candidate
    return x, y, f, c
