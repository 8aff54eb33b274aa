"""Chunking: merge a document's blocks into chunks of about ChunkingConfig.target_tokens,
cutting only between blocks or between sentences, never across a change of section, and
keeping for every chunk the locator that covers its blocks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from .config import ChunkingConfig
from .document import Block, Chunk, Document, Locator, Span, covering
from .ids import chunk_id
from .sentences import split_sentences

# Roughly what a WordPiece/BPE tokenizer counts: Latin words and numbers, each CJK
# character, each other symbol.
_TOKEN = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass(frozen=True, slots=True)
class _Piece:
    """A block, or a sentence run of one, the unit the chunker packs."""

    text: str
    locator: Locator
    tokens: int
    kind: str = "paragraph"


def chunk(document: Document, cfg: ChunkingConfig = ChunkingConfig()) -> list[Chunk]:
    """Chunks in document order; chunk_id ordinals are stable for the same bytes and config."""
    chunks: list[Chunk] = []
    runs = list(_by_section(document.blocks))
    # A heading with nothing under it (a title right before its first section) is not worth
    # a chunk of its own: it lives on in the section path of the chunks that follow.
    runs = [r for r in runs if any(b.kind != "heading" for b in r)] or runs
    for section_blocks in runs:
        pieces = [p for block in section_blocks for p in _pieces(block, cfg.max_block_tokens)]
        for group in _pack(pieces, cfg):
            chunks.append(_make_chunk(document, group, len(chunks)))
    return chunks


def _by_section(blocks: tuple[Block, ...]) -> Iterator[list[Block]]:
    """Runs of blocks under the same heading path; a heading opens its own run."""
    run: list[Block] = []
    for block in blocks:
        if run and (block.kind == "heading" or block.locator.section != run[-1].locator.section):
            yield run
            run = []
        run.append(block)
    if run:
        yield run


def _pieces(block: Block, max_tokens: int) -> list[_Piece]:
    tokens = count_tokens(block.text)
    if tokens <= max_tokens:
        return [_Piece(block.text, block.locator, tokens, block.kind)]
    pieces: list[_Piece] = []
    current: list[tuple[int, int]] = []
    size = 0
    for start, end in _sentences_or_slices(block.text, max_tokens):
        n = count_tokens(block.text[start:end])
        if current and size + n > max_tokens:
            pieces.append(_sub_piece(block, current[0][0], current[-1][1], size))
            current, size = [], 0
        current.append((start, end))
        size += n
    if current:
        pieces.append(_sub_piece(block, current[0][0], current[-1][1], size))
    return pieces


def _sentences_or_slices(text: str, max_tokens: int) -> Iterator[tuple[int, int]]:
    """Sentence spans; a sentence longer than max_tokens (a table, a run-on line) is cut at tokens."""
    for start, end in split_sentences(text):
        matches = list(_TOKEN.finditer(text, start, end))
        if len(matches) <= max_tokens:
            yield start, end
            continue
        for i in range(0, len(matches), max_tokens):
            group = matches[i : i + max_tokens]
            yield group[0].start(), group[-1].end()


def _sub_piece(block: Block, start: int, end: int, tokens: int) -> _Piece:
    loc = block.locator
    return _Piece(block.text[start:end], replace(loc, char_start=loc.char_start + start, char_end=loc.char_start + end), tokens,
                  block.kind)


def _pack(pieces: list[_Piece], cfg: ChunkingConfig) -> Iterator[list[_Piece]]:
    group: list[_Piece] = []
    size = 0
    for piece in pieces:
        if group and size + piece.tokens > cfg.target_tokens:
            yield group
            # Only as much overlap as still leaves room for this piece within the target.
            group = _overlap(group, min(cfg.overlap_tokens, cfg.target_tokens - piece.tokens))
            size = sum(p.tokens for p in group)
        group.append(piece)
        size += piece.tokens
    if group:
        yield group


def _overlap(group: list[_Piece], budget: int) -> list[_Piece]:
    """The last sentences of the last piece, up to budget tokens, to open the next chunk with."""
    if budget <= 0:
        return []
    last = group[-1]
    kept: list[tuple[int, int]] = []
    size = 0
    for start, end in reversed(split_sentences(last.text)):
        n = count_tokens(last.text[start:end])
        if size + n > budget:
            break
        kept.insert(0, (start, end))
        size += n
    if not kept or kept[0][0] == 0 and len(kept) == len(split_sentences(last.text)) and size == last.tokens:
        return [] if not kept or size > budget else [last]
    start, end = kept[0][0], kept[-1][1]
    loc = last.locator
    return [_Piece(last.text[start:end], replace(loc, char_start=loc.char_start + start, char_end=loc.char_start + end), size,
                   last.kind)]


def _make_chunk(document: Document, group: list[_Piece], ordinal: int) -> Chunk:
    parts: list[str] = []
    spans: list[Span] = []
    offset = 0
    for piece in group:
        if parts:
            offset += 2
        loc = piece.locator
        spans.append(Span(offset, offset + len(piece.text), loc.page, loc.line_start, loc.line_end, piece.kind))
        parts.append(piece.text)
        offset += len(piece.text)
    locs = [p.locator for p in group]
    locator = replace(
        locs[-1],
        **covering(locs),
        char_start=locs[0].char_start,
        char_end=locs[-1].char_end,
        bboxes=tuple(b for loc in locs for b in loc.bboxes),
    )
    return Chunk(chunk_id=chunk_id(document.doc_id, ordinal), text="\n\n".join(parts), locator=locator, spans=tuple(spans))
