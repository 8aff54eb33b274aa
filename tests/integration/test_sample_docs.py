"""sample_docs -> ingest -> search and ask -> the cited page (or lines) equals the gold location.

Uses the real all-MiniLM-L6-v2 model through the default Settings, loaded once for the module.
Gold locations (sample_docs/questions.jsonl): PDF {"file", "page"}; DOCX {"file", "page",
"heading", "paragraph"}; Markdown {"file", "heading", "line_start", "line_end"}."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from citekb.api.kb import KnowledgeBase
from citekb.api.settings import Settings
from citekb.generation.answer import Answer
from citekb.ingest.document import Locator
from citekb.retrieval.embed import MINILM_ID
from citekb.retrieval.hit import Hit

pytestmark = pytest.mark.slow

SAMPLE_DOCS = Path(__file__).resolve().parents[2] / "sample_docs"
QUESTIONS = [json.loads(line) for line in (SAMPLE_DOCS / "questions.jsonl").read_text("utf-8").splitlines() if line.strip()]
DOCUMENTS = sorted(p.name for p in SAMPLE_DOCS.iterdir() if p.suffix in {".pdf", ".docx", ".md"})

HIT_AT_1_BAR = 0.90  # top search hit's page range (or line range) contains the gold location
CITATION_BAR = 0.85  # first citation's page (or line range) equals the gold location


def covers(loc: Locator, gold: dict[str, Any]) -> bool:
    """A search hit matches: the gold page lies in its page range, or its lines overlap the gold lines."""
    if loc.source != gold["file"]:
        return False
    if "page" in gold:
        return loc.page is not None and loc.page_end is not None and loc.page <= gold["page"] <= loc.page_end
    return loc.line_start is not None and loc.line_end is not None and (
        loc.line_start <= gold["line_end"] and gold["line_start"] <= loc.line_end
    )


def cites_exactly(loc: Locator, gold: dict[str, Any]) -> bool:
    """A citation matches: its page is the gold page, or its line range is the gold line range."""
    if loc.source != gold["file"]:
        return False
    if "page" in gold:
        return loc.page == gold["page"]
    return (loc.line_start, loc.line_end) == (gold["line_start"], gold["line_end"])


def show(loc: Locator | None) -> str:
    if loc is None:
        return "nothing"
    if loc.page is not None:
        return f"{loc.source} p.{loc.page}-{loc.page_end}"
    return f"{loc.source} lines {loc.line_start}-{loc.line_end}"


@dataclass(frozen=True)
class Outcome:
    question: dict[str, Any]
    hits: list[Hit]
    answer: Answer

    @property
    def gold(self) -> dict[str, Any]:
        gold: dict[str, Any] = self.question["gold"][0]
        return gold

    def line(self) -> str:
        top = self.hits[0].chunk.locator if self.hits else None
        cited = self.answer.citations[0].locator if self.answer.citations else None
        return (f"{self.question['id']}: gold {self.gold} | top hit {show(top)} | first citation {show(cited)}"
                f" | grounded={self.answer.grounded} | {self.question['question']!r}")


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    kb = KnowledgeBase(Settings(index=tmp_path_factory.mktemp("sample-index") / "idx"))
    assert kb.settings.embedding_model == MINILM_ID
    report = kb.ingest([SAMPLE_DOCS])
    assert report.failed == []
    assert sorted(f.source for f in report.ingested) == DOCUMENTS
    assert [s.path for s in report.skipped] == [str(SAMPLE_DOCS / "questions.jsonl")]
    return kb


@pytest.fixture(scope="module")
def outcomes(sample_kb: KnowledgeBase) -> list[Outcome]:
    return [Outcome(q, sample_kb.search(q["question"], k=5), sample_kb.ask(q["question"])) for q in QUESTIONS]


def test_every_sample_document_is_indexed_with_its_pages(sample_kb: KnowledgeBase) -> None:
    records = {r.source: r for r in sample_kb.documents()}
    assert sorted(records) == DOCUMENTS
    for name, record in records.items():
        assert record.pages == (None if name.endswith(".md") else 4)
        assert record.chunks >= 1
    assert len(sample_kb.snapshot().chunks) == sum(r.chunks for r in records.values())


def test_every_question_has_gold_in_a_sample_document() -> None:
    assert len(QUESTIONS) == 48
    for q in QUESTIONS:
        [gold] = q["gold"]
        assert gold["file"] in DOCUMENTS, q["id"]
        assert ("page" in gold) != gold["file"].endswith(".md"), q["id"]


def test_the_top_search_hit_holds_the_gold_location(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        assert len(o.hits) == 5, o.question["id"]
    misses = [o for o in outcomes if not covers(o.hits[0].chunk.locator, o.gold)]
    rate = 1 - len(misses) / len(outcomes)
    assert rate >= HIT_AT_1_BAR, f"hit@1 {rate:.3f} < {HIT_AT_1_BAR}; misses:\n" + "\n".join(o.line() for o in misses)


def test_the_first_citation_is_the_gold_page_or_lines(outcomes: list[Outcome]) -> None:
    misses = [o for o in outcomes if not (o.answer.citations and cites_exactly(o.answer.citations[0].locator, o.gold))]
    rate = 1 - len(misses) / len(outcomes)
    assert rate >= CITATION_BAR, f"first-citation accuracy {rate:.3f} < {CITATION_BAR}; misses:\n" + "\n".join(o.line() for o in misses)


def test_every_citation_marker_is_in_the_answer_and_quotes_a_returned_hit(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        texts = {h.chunk.chunk_id: h.chunk.text for h in o.answer.hits}
        assert [c.n for c in o.answer.citations] == list(range(1, len(o.answer.citations) + 1)), o.line()
        assert o.answer.grounded == bool(o.answer.citations), o.line()
        for c in o.answer.citations:
            assert f"[{c.n}]" in o.answer.text, o.line()
            assert c.quote in texts[c.chunk_id], o.line()
