"""Markdown via markdown-it-py: heading paths and 1-based source line ranges from the token map."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..document import Document
from ..errors import ExtractionError, reason
from .base import DocumentBuilder, HeadingPath

_TAG = re.compile(r"<[^>]*>")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")
# YAML front matter (Jekyll, Hugo, Pandoc): "---" on the first line, a non-blank line next
# (Pandoc's rule, so a leading thematic break is left alone), closed by "---" or "...".
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(?=[ \t]*\S)(.*?)^(?:---|\.\.\.)[ \t]*\r?$", re.S | re.M)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t\r]*$", re.M)


class MarkdownExtractor:
    suffixes = (".md", ".markdown")

    def __init__(self) -> None:
        self._md = MarkdownIt("commonmark").enable("table")

    def __reduce__(self) -> tuple[type[MarkdownExtractor], tuple[()]]:
        # Sent to the extraction worker by pickle; the parser holds modules, so it is rebuilt there.
        return (MarkdownExtractor, ())

    def extract(self, path: Path, doc_id: str, max_chars: int | None = None, ocr: bool = True) -> Document:
        raw = path.read_bytes()
        try:
            source = raw.decode("utf-8-sig")
            warnings: list[str] = []
        except UnicodeDecodeError as exc:
            # Keep the good text: one bad byte should not cost the whole document.
            source = raw.decode("utf-8-sig", errors="replace")
            warnings = [f"{path.name}: invalid UTF-8 at byte {exc.start}; bad bytes replaced"]
        source, title = _strip_front_matter(source)
        lines = source.splitlines()
        builder = DocumentBuilder(doc_id=doc_id, source=path.name, title=title, warnings=warnings, max_chars=max_chars)
        try:
            tokens = self._md.parse(source)
        except MemoryError:
            raise
        except Exception as exc:  # markdown-it should not fail, but one odd file must not stop a batch
            raise ExtractionError(f"cannot read {path.name}: Markdown parser failed ({reason(exc)})") from exc
        headings = HeadingPath()
        for i, token in enumerate(tokens):
            if token.map is None or token.level != 0 and token.type not in ("paragraph_open", "fence", "code_block"):
                continue
            first, last = token.map[0] + 1, token.map[1]
            if token.type == "heading_open":
                text = _inline_text(tokens[i + 1])
                headings.enter(int(token.tag[1]), text)
                if not builder.title and token.tag == "h1":
                    builder.title = text
                builder.add(text, kind="heading", section=headings.path, line_start=first, line_end=first)
            elif token.type == "paragraph_open":
                builder.add(_inline_text(tokens[i + 1]), section=headings.path, line_start=first, line_end=last)
            elif token.type == "table_open":
                rows = [_table_row(line) for line in lines[first - 1 : last] if not _TABLE_RULE.match(line)]
                builder.add("\n".join(r for r in rows if r), kind="table", section=headings.path,
                            line_start=first, line_end=last)
            elif token.type in ("fence", "code_block"):
                builder.add(token.content, section=headings.path, line_start=first, line_end=last)
            elif token.type == "html_block":
                builder.add(_TAG.sub(" ", token.content), section=headings.path, line_start=first, line_end=last)
        return builder.build(pages=None, fallback_title=path.stem)


def _strip_front_matter(source: str) -> tuple[str, str]:
    """The source with its front matter blanked out, and the front matter's title ("" if none).
    Blank lines stand in for the block, so the line numbers of everything after stay true;
    left in, markdown-it reads "title: ...\n---" as a heading."""
    match = _FRONT_MATTER.match(source)
    if match is None:
        return source, ""
    title = _FRONT_TITLE.search(match.group(1))
    return "\n" * match.group(0).count("\n") + source[match.end():], title.group(1).strip("\"'") if title else ""


def _inline_text(token: Token) -> str:
    """Plain text of an inline token: markup dropped, line breaks kept as spaces."""
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts).strip()


def _table_row(line: str) -> str:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return " | ".join(c for c in cells if c)
