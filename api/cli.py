"""The citekb command line. Commands are a few lines calling KnowledgeBase; errors map to exit
codes here only: 0 ok, 1 an error (or, for ingest, some files failed), 2 a usage error."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from citekb import __version__
from citekb.api.cli_support import INDEX_HELP, emit, guard, open_kb
from citekb.api.process import fix_malloc_mmap_threshold, passive_openmp_waits


def _configure_logging(verbose: int) -> None:
    """Quiet by default: warnings only, as key=value lines on stderr. -v info, -vv debug."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if verbose < 2:
        # transformers shows a weight-loading bar and chatty warnings on every model load.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="citekb")
@click.option("-v", "--verbose", count=True, help="more logging on stderr (-vv: debug)")
def cli(verbose: int) -> None:
    """citekb: answers from your own PDF, Word and Markdown files, with citations to page and lines."""
    _configure_logging(verbose)
    fix_malloc_mmap_threshold()  # the server's and a long ingest's memory levels off (api/process.py)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON on stdout")
@click.option("--progress/--no-progress", default=None, help="progress bar on stderr (default: when stderr is a terminal)")
@click.option("--sync", is_flag=True, help="also remove the documents whose files under the folders in PATHS are gone")
@click.option("--group", "groups", multiple=True, help="access group of these documents (repeat for more); only API "
              "keys in one of their groups read them (default: readable by all; a document already indexed keeps its groups)")
@click.option("--collection", help="ingest into this collection of the server's index (see `citekb collections`)")
@click.pass_context
@guard
def ingest(ctx: click.Context, paths: tuple[Path, ...], index: Path | None, as_json: bool, progress: bool | None,
           sync: bool, groups: tuple[str, ...], collection: str | None) -> None:
    """Index the files and folders in PATHS (folders recursively). Exit 1 if any file failed."""
    from citekb.api.http.schemas import IngestResponse

    for path in paths:
        if not path.exists():
            raise click.UsageError(f"{path}: no such file or folder")
    kb = open_kb(ctx, index)
    if collection is not None:
        from citekb.api.collections import Collections

        kb = Collections(kb).get(collection)
    report = kb.ingest(list(paths), show_progress=sys.stderr.isatty() if progress is None else progress, sync=sync,
                       groups=list(groups) or None)
    if as_json:
        emit(IngestResponse.from_report(report))
    else:
        for f in report.ingested:
            state = "unchanged" if f.unchanged else f"{f.chunks} chunks"
            click.echo(f"ingested {f.path} ({state}, doc_id {f.doc_id})")
        for r in report.removed:
            click.echo(f"removed  {r.path} (file gone, doc_id {r.doc_id})")
        for s in report.skipped:
            click.echo(f"skipped  {s.path}: {s.reason}")
        for e in report.failed:
            click.echo(f"FAILED   {e.path}: {e.error}", err=True)
        removed = f", {len(report.removed)} removed" if sync else ""
        click.echo(f"{len(report.ingested)} ingested, {len(report.skipped)} skipped, {len(report.failed)} failed{removed}", err=True)
    if report.failed:
        sys.exit(1)


@cli.command()
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@guard
def check(ctx: click.Context, index: Path | None, as_json: bool) -> None:
    """Verify the index: its stores agree with its chunks and documents, and each document's file
    is unchanged. Exit 0 if healthy, 1 with the list of problems."""
    from citekb.api.http.schemas import CheckResponse

    report = open_kb(ctx, index).check()
    if as_json:
        emit(CheckResponse.from_report(report))
    else:
        click.echo(f"index {report.index}: snapshot {report.snapshot}, {report.documents} documents, {report.chunks} chunks")
        for p in report.problems:
            click.echo(f"problem  {p.kind}: {p.message}")
        if report.problems:
            fixable = any(p.repairable for p in report.problems)
            hint = "; `citekb repair` rebuilds the index" if fixable else ""
            click.echo(f"{len(report.problems)} problem(s){hint}; `citekb ingest DIR --sync` picks up changed and deleted files", err=True)
        else:
            click.echo("healthy")
    if not report.healthy:
        sys.exit(1)


@cli.command()
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@guard
def repair(ctx: click.Context, index: Path | None, as_json: bool) -> None:
    """Rebuild what is missing or inconsistent in the index and publish a consistent snapshot:
    the keyword index from the chunks' text, the dense index by embedding them again, documents
    with lost chunks from their files. Exit 0 when the index is consistent afterwards."""
    from citekb.api.http.schemas import RepairResponse

    report = open_kb(ctx, index).repair()
    if as_json:
        emit(RepairResponse.from_report(report))
        return
    for action in report.actions:
        click.echo(action)
    click.echo(f"published snapshot {report.published}" if report.published else "nothing to repair")
    for p in report.remaining:
        click.echo(f"left     {p.kind}: {p.message}", err=True)


@cli.command()
@click.argument("query")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 100), help="hits to return")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@guard
def search(ctx: click.Context, query: str, k: int, index: Path | None, as_json: bool) -> None:
    """The passages that best match QUERY, best first."""
    from citekb.api.http.schemas import HitOut, SearchResponse

    if not query.strip():
        raise click.UsageError("QUERY is empty")
    hits = [HitOut.from_hit(h) for h in open_kb(ctx, index).search(query, k=k)]
    if as_json:
        emit(SearchResponse(hits=hits))
        return
    for i, h in enumerate(hits, 1):
        click.echo(f"{i:2}. {_where(h)}  score {h.score:.3f}")
        click.echo(f"    {h.text[:200].replace(chr(10), ' ')}")


@cli.command()
@click.argument("query")
@click.option("--k", type=click.IntRange(1, 100), help="passages to answer from (default: CITEKB_ASK_K, 5)")
@click.option("--backend", help="answer backend: extractive, openai, transformers, tinyllm (default: CITEKB_ANSWER_BACKEND, extractive)")
@click.option("--verify", type=click.Choice(["flag", "drop", "off"]),
              help="sentences their citations do not support: flag, drop or keep unchecked (default: CITEKB_VERIFY_MODE, flag)")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="TinyLM checkpoint for --backend tinyllm (default: CITEKB_TINYLLM_MODEL)")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@guard
def ask(ctx: click.Context, query: str, k: int | None, backend: str | None, verify: str | None, model: Path | None,
        index: Path | None, as_json: bool) -> None:
    """Answer QUERY from the documents, citing document, page and lines; each sentence is checked
    against the passages it cites."""
    from citekb.api.http.schemas import AskResponse

    if not query.strip():
        raise click.UsageError("QUERY is empty")
    response = AskResponse.from_answer(open_kb(ctx, index, verify_mode=verify, tinyllm_model=model).ask(query, k=k, backend=backend))
    if as_json:
        emit(response)
        return
    click.echo(response.answer)
    for c in response.citations:
        click.echo(f"  [{c.n}] {_where(c)}")
    for s in response.sentences:
        if not s.supported:
            click.echo(f"  unsupported by its citations: {s.text}", err=True)


def _where(item: Any) -> str:
    pages = "" if item.page is None else f" p.{item.page}" + (f"-{item.page_end}" if item.page_end not in (None, item.page) else "")
    lines = "" if item.line_start is None else f" lines {item.line_start}-{item.line_end}"
    section = f" § {item.section}" if item.section else ""
    return f"{item.source}{pages}{lines}{section}"


@cli.group()
def docs() -> None:
    """List or delete indexed documents."""


@docs.command("list")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@guard
def docs_list(ctx: click.Context, index: Path | None, as_json: bool) -> None:
    from citekb.api.http.schemas import DocumentOut, DocumentsResponse

    documents = [DocumentOut.from_record(r) for r in open_kb(ctx, index).documents()]
    if as_json:
        emit(DocumentsResponse(documents=documents))
        return
    for d in documents:
        pages = f"{d.pages} pages" if d.pages is not None else "no pages"
        click.echo(f"{d.doc_id}  {d.source}  ({pages}, {d.chunks} chunks)  {d.title}")


@docs.command("delete")
@click.argument("doc_id")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@guard
def docs_delete(ctx: click.Context, doc_id: str, index: Path | None, as_json: bool) -> None:
    """Remove DOC_ID and all its chunks from the index."""
    from citekb.api.http.schemas import DeleteResponse, DocumentOut

    record = open_kb(ctx, index).delete(doc_id)
    if as_json:
        emit(DeleteResponse(deleted=DocumentOut.from_record(record)))
    else:
        click.echo(f"deleted {record.doc_id} ({record.source}, {record.chunks} chunks)")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.pass_context
@guard
def serve(ctx: click.Context, host: str, port: int, index: Path | None) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from citekb.api.http.app import create_app

    kb = open_kb(ctx, index)
    app = create_app(kb)
    app.state.server.check_exposure(host)
    kb.warm_up()
    level = logging.getLogger().getEffectiveLevel()
    # The access log is citekb's own (request IDs and key ids, logger citekb.access, shown with -v).
    uvicorn.run(app, host=host, port=port, log_level=logging.getLevelName(level).lower(), access_log=False)


# Commands that live in their own modules (api/cli_<topic>.py), one add_command line each.
# (Imported here, after the group exists; each module imports only cli_support.)
from citekb.api.cli_eval import eval_cmd  # noqa: E402
cli.add_command(eval_cmd)
from citekb.api.cli_reranker import train_reranker  # noqa: E402
cli.add_command(train_reranker)
from citekb.api.cli_keys import collections, keys  # noqa: E402
cli.add_command(keys)
cli.add_command(collections)
from citekb.api.cli_train import train  # noqa: E402
cli.add_command(train)

from citekb.api.cli_migrate import export_cmd, import_cmd  # noqa: E402
cli.add_command(export_cmd)
cli.add_command(import_cmd)


def main(argv: list[str] | None = None) -> int:
    passive_openmp_waits()  # before anything imports torch (api/process.py)
    try:
        cli.main(args=argv, prog_name="citekb", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
