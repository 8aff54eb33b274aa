"""What the CLI and HTTP tests share: the contract's field sets, questions about the tiny corpus,
and small helpers. Imported as `api_contract` (tests/api/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings

from fakes import HashEmbedder

HASH_MODEL = "test/hash-embedder"
OTHER_HASH_MODEL = "test/other-hash-embedder"  # a second fake, to build an index another model cannot read

# The fields the contract promises on every hit and citation (extra fields are allowed).
LOCATED_FIELDS = {"doc_id", "source", "title", "page", "page_end", "section", "line_start", "line_end", "chunk_id", "text"}
HIT_FIELDS = LOCATED_FIELDS | {"score"}
CITATION_FIELDS = LOCATED_FIELDS | {"n"}
INGEST_FIELDS = {"ingested", "skipped", "failed", "removed"}
INGESTED_FIELDS = {"path", "doc_id", "source", "pages", "chunks", "unchanged"}

# Questions about the tiny corpus (tests/tiny_docs.py) and where their answers are printed.
PDF_QUESTION = "How often should the intake filter be replaced?"
DOCX_QUESTION = "Who approves trips outside Europe?"
MD_QUESTION = "What extension is the security desk?"
UNANSWERABLE = "What is the boiling point of mercury on Mars?"


def make_kb(index: Path, **settings: Any) -> KnowledgeBase:
    return KnowledgeBase(Settings(index=index, embedding_model=HASH_MODEL, **settings), embedder=HashEmbedder())


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as one JSON document: fails if anything else was printed there."""
        return json.loads(self.stdout)


RunCli = Callable[..., CliResult]


def where(item: dict[str, Any]) -> tuple[Any, ...]:
    """A hit's or citation's location: (source, page, page_end, line_start, line_end, section)."""
    return (item["source"], item["page"], item["page_end"], item["line_start"], item["line_end"], item["section"])


def assert_located(item: dict[str, Any], fields: set[str] = LOCATED_FIELDS) -> None:
    """The contract's rules for one hit or citation of the tiny corpus: pages for PDF and DOCX,
    lines for Markdown, 1-based, and a section path that starts with the document's title."""
    assert fields <= item.keys(), f"missing {fields - item.keys()}"
    assert item["chunk_id"].startswith(item["doc_id"] + ":")
    if item["source"].endswith(".md"):
        assert item["page"] is None and item["page_end"] is None
        assert isinstance(item["line_start"], int) and isinstance(item["line_end"], int)
        assert 1 <= item["line_start"] <= item["line_end"]
    else:
        assert item["line_start"] is None and item["line_end"] is None
        assert isinstance(item["page"], int) and isinstance(item["page_end"], int)
        assert 1 <= item["page"] <= item["page_end"]
    assert item["section"].split(" > ")[0] == item["title"]
