"""Sentence boundaries for English and Chinese text, as character offsets. Extractors join
wrapped lines with spaces, so a line break left in a block is a real one (a table row)."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (followed by space and a capital, digit or quote) or at a CJK
# full stop, exclamation or question mark (no space follows those in Chinese text).
_END = re.compile(
    r"""(?<=[.!?])["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9\u4e00-\u9fff])"""  # Latin end + space
    r"""|(?<=[。！？!?；])["'”’」』）)]*"""  # CJK end, closing quotes stay with the sentence
    r"""|\s*\n\s*"""  # a line break: table rows, list lines and verse are units of their own
)
# Abbreviations whose period does not end a sentence ("e.g. Paris", "Dr. Smith", "U.S. Army").
_ABBREVIATIONS = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|No|Fig|Vol|approx|cf|Inc|Ltd|Co)|\b[A-Z](?:\.[A-Z])*)\.$"
)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """[start, end) offsets of the sentences of text, whitespace trimmed; none for blank text."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _END.finditer(text):
        end = match.start() if match.group().strip() == "" else match.end()
        head = text[start:match.start()].rstrip()
        if match.group().strip() == "" and _ABBREVIATIONS.search(head):
            continue
        _append(spans, text, start, max(end, match.start()))
        start = match.end()
    _append(spans, text, start, len(text))
    return spans


def _append(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
