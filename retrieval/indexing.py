"""What each search leg indexes for a chunk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from citekb.ingest.document import Chunk
from citekb.ingest.sentences import split_sentences

from .analyze import analyze, query_language
from .embed import Embedder


def index_text(chunk: Chunk) -> str:
    """The keyword leg's text: heading path, then the chunk's text. The path often names the
    topic ("Handbook > Parental leave") that the passage itself never repeats."""
    section = chunk.locator.section_path
    return f"{section}\n{chunk.text}" if section else chunk.text


# A chunk of many short sentences (a list, a table, run-on prose) gets its neighbours merged
# so that it owns at most this many vectors: one 1,000,000-character line was 12,400
# sentences and three minutes of embedding; capped, a quarter of that. A typical chunk has 7.
MAX_UNITS_PER_CHUNK = 8


def dense_units(chunk: Chunk) -> list[str]:
    """The dense leg's texts: each sentence of each block, so a chunk scores by its best one."""
    units = []
    for span in chunk.spans:
        block = chunk.text[span.start:span.end]
        units.extend(block[a:b] for a, b in split_sentences(block))
    if len(units) > MAX_UNITS_PER_CHUNK:
        size = -(-len(units) // MAX_UNITS_PER_CHUNK)
        units = [" ".join(units[i : i + size]) for i in range(0, len(units), size)]
    return units or [chunk.text]


@dataclass(frozen=True, slots=True)
class ChunkRows:
    """Everything the indexes need for a run of chunks, row-aligned with them."""

    vectors: NDArray[np.float32]
    owners: NDArray[np.int64]  # chunk position (0-based in this run) of each vector
    terms: list[list[str]]


def prepare(chunks: Sequence[Chunk], embedder: Embedder, units_of: Callable[[Chunk], list[str]] = dense_units,
            show_progress: bool = False) -> ChunkRows:
    """The rows of chunks: a vector for each of their dense units (units_of) in a language the
    embedder reads, and their keyword terms. A unit in another language gets no vector: MiniLM
    reads Chinese as unknown tokens (page hit@1 0.18 on the Chinese questions of
    ../shared/data/qa, where dense search is off for Chinese queries), so its vectors would only
    add noise to English queries' dense candidates, and they were 32% of the tokens embedded
    there. Keyword search finds such chunks, as it does for Chinese queries."""
    units: list[str] = []
    owners: list[int] = []
    for i, c in enumerate(chunks):
        texts = [u for u in units_of(c) if query_language(u) in embedder.languages]
        units.extend(texts)
        owners.extend([i] * len(texts))
    # A sentence in the overlap of two chunks is embedded once (6% of the units of ../shared/data/qa).
    distinct = list(dict.fromkeys(units))
    row_of = {text: row for row, text in enumerate(distinct)}
    # The keyword analysis (Python, ~10% of an ingest) runs while the model embeds (torch, which
    # lets go of the GIL), not after it.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="citekb-prepare") as pool:
        embedding = pool.submit(embedder.embed, distinct, show_progress)
        terms = [analyze(index_text(c)) for c in chunks]
        vectors = embedding.result()
    return ChunkRows(vectors=vectors[[row_of[text] for text in units]], owners=np.asarray(owners, np.int64), terms=terms)
