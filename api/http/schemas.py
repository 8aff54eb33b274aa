"""Wire schemas: what the HTTP API (and `--json` CLI output) sends. One from_* converter each."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from citekb.generation.answer import Answer, Citation, SentenceSupport
from citekb.ingest.document import Locator
from citekb.api.kb import CheckReport, RepairReport, SyncReport
from citekb.retrieval.hit import Hit
from citekb.retrieval.integrity import Problem
from citekb.retrieval.store import DocumentRecord


class _Located(BaseModel):
    doc_id: str
    source: str = Field(description="the file's name as ingested")
    title: str
    page: int | None = Field(description="1-based first page (PDF, DOCX); null for Markdown")
    page_end: int | None
    section: str = Field(description='heading path, "Title > Section 2"')
    line_start: int | None = Field(description="1-based first source line (Markdown); else null")
    line_end: int | None
    chunk_id: str
    text: str

    @staticmethod
    def _fields(loc: Locator, chunk_id: str, text: str) -> dict[str, object]:
        return {
            "doc_id": loc.doc_id, "source": loc.source, "title": loc.title, "page": loc.page, "page_end": loc.page_end,
            "section": loc.section_path, "line_start": loc.line_start, "line_end": loc.line_end,
            "chunk_id": chunk_id, "text": text,
        }


class HitOut(_Located):
    score: float
    scores: dict[str, float] = Field(description="each stage's own score: bm25, dense, fused, rerank")

    @classmethod
    def from_hit(cls, hit: Hit) -> HitOut:
        return cls(**cls._fields(hit.chunk.locator, hit.chunk.chunk_id, hit.chunk.text), score=hit.score,
                   scores=dict(hit.scores))


class CitationOut(_Located):
    n: int = Field(description="the [n] marker in the answer")

    @classmethod
    def from_citation(cls, citation: Citation) -> CitationOut:
        return cls(**cls._fields(citation.locator, citation.chunk_id, citation.quote), n=citation.n)


def _not_blank(query: str) -> str:
    if not query.strip():
        raise ValueError("the query is empty")
    return query


# A query of only whitespace is as empty as "": a 422 like it, not a 400 from the searcher.
Query = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_not_blank)]


# k is strict: the schema says integer, so JSON true, 5.5 or "5" is a 422, not read as 1 or 5.
class SearchRequest(BaseModel):
    query: Query
    k: int = Field(10, ge=1, le=100, strict=True)


class SearchResponse(BaseModel):
    hits: list[HitOut]


class AskRequest(BaseModel):
    query: Query
    k: int | None = Field(None, ge=1, le=100, strict=True, description="passages retrieved for the answer (default: server setting)")
    backend: str | None = Field(None, description="answer backend (default: server setting)")


class SentenceOut(BaseModel):
    text: str = Field(description="the sentence as it stands in the answer, its [n] markers included")
    start: int = Field(description="0-based offset of the sentence in the answer (Python str indices)")
    end: int
    citations: list[int] = Field(description="the [n] markers the sentence carries")
    supported: bool = Field(description="false: no citation, or a cited passage does not say this; mark it in a UI")
    score: float = Field(description="support of the sentence by its weakest citation, 0 to 1")

    @classmethod
    def from_support(cls, support: SentenceSupport, text: str) -> SentenceOut:
        return cls(text=text[support.start:support.end], start=support.start, end=support.end,
                   citations=list(support.citations), supported=support.supported, score=support.score)


class AskResponse(BaseModel):
    answer: str
    grounded: bool = Field(description="false when the documents do not answer the question")
    citations: list[CitationOut]
    hits: list[HitOut]
    sentences: list[SentenceOut] = Field(
        description="each sentence of the answer checked against the passages it cites; empty when not grounded")

    @classmethod
    def from_answer(cls, answer: Answer) -> AskResponse:
        return cls(answer=answer.text, grounded=answer.grounded,
                   citations=[CitationOut.from_citation(c) for c in answer.citations],
                   hits=[HitOut.from_hit(h) for h in answer.hits],
                   sentences=[SentenceOut.from_support(s, answer.text) for s in answer.sentences])


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    title: str
    pages: int | None
    chunks: int
    ingested_at: float
    warnings: list[str]
    groups: list[str] = Field(description="access groups that may read it; empty: everyone who may read the collection")

    @classmethod
    def from_record(cls, record: DocumentRecord) -> DocumentOut:
        return cls(doc_id=record.doc_id, source=record.source, title=record.title, pages=record.pages,
                   chunks=record.chunks, ingested_at=record.ingested_at, warnings=list(record.warnings),
                   groups=list(record.groups))


class DocumentsResponse(BaseModel):
    documents: list[DocumentOut]


class IngestedOut(BaseModel):
    path: str
    doc_id: str
    source: str
    pages: int | None
    chunks: int
    unchanged: bool
    warnings: list[str]


class SkippedOut(BaseModel):
    path: str
    reason: str


class FailedOut(BaseModel):
    path: str
    error: str


class RemovedOut(BaseModel):
    path: str
    doc_id: str


class IngestResponse(BaseModel):
    ingested: list[IngestedOut]
    skipped: list[SkippedOut]
    failed: list[FailedOut]
    removed: list[RemovedOut] = Field(description="documents removed because their files are gone (ingest --sync)")

    @classmethod
    def from_report(cls, report: SyncReport) -> IngestResponse:
        return cls(
            ingested=[IngestedOut(path=f.path, doc_id=f.doc_id, source=f.source, pages=f.pages, chunks=f.chunks,
                                  unchanged=f.unchanged, warnings=list(f.warnings)) for f in report.ingested],
            skipped=[SkippedOut(path=s.path, reason=s.reason) for s in report.skipped],
            failed=[FailedOut(path=f.path, error=f.error) for f in report.failed],
            removed=[RemovedOut(path=r.path, doc_id=r.doc_id) for r in report.removed],
        )


class ProblemOut(BaseModel):
    kind: str
    message: str
    doc_id: str | None
    path: str | None


class CheckResponse(BaseModel):
    healthy: bool
    index: str
    snapshot: str
    documents: int
    chunks: int
    problems: list[ProblemOut]

    @classmethod
    def from_report(cls, report: CheckReport) -> CheckResponse:
        return cls(healthy=report.healthy, index=str(report.index), snapshot=report.snapshot, documents=report.documents,
                   chunks=report.chunks, problems=[_problem_out(p) for p in report.problems])


class RepairResponse(BaseModel):
    published: str | None = Field(description="the repaired snapshot; null when nothing needed repair")
    actions: list[str]
    dropped: list[RemovedOut]
    remaining: list[ProblemOut] = Field(description="changed or missing files, which `ingest --sync` fixes")

    @classmethod
    def from_report(cls, report: RepairReport) -> RepairResponse:
        return cls(published=report.published, actions=report.actions,
                   dropped=[RemovedOut(path=r.path, doc_id=r.doc_id) for r in report.dropped],
                   remaining=[_problem_out(p) for p in report.remaining])


def _problem_out(problem: Problem) -> ProblemOut:
    return ProblemOut(kind=problem.kind, message=problem.message, doc_id=problem.doc_id, path=problem.path)


class DeleteResponse(BaseModel):
    deleted: DocumentOut


class ErrorResponse(BaseModel):
    error: str
