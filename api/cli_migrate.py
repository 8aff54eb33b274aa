"""`citekb export` and `citekb import`: move an index between backends (the index directory and
Milvus) without embedding anything again.

    citekb export dump/                                   # from the configured backend
    CITEKB_BACKEND=milvus citekb import dump/             # into embedded Milvus (INDEX/milvus.db)
    citekb import dump/ --backend milvus --milvus-uri http://milvus:19530"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from citekb.api.cli_support import INDEX_HELP, guard, open_kb

_BACKEND = click.Choice(["faiss", "milvus"])


def _open(ctx: click.Context, index: Path | None, backend: str | None, milvus_uri: str | None) -> Any:
    return open_kb(ctx, index, backend=backend, milvus_uri=milvus_uri)


@click.command("export")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--backend", type=_BACKEND, help="read from this backend (default: $CITEKB_BACKEND, else faiss)")
@click.option("--milvus-uri", help="Milvus file or server URI (default: $CITEKB_MILVUS_URI, else INDEX/milvus.db)")
@click.pass_context
@guard
def export_cmd(ctx: click.Context, dest: Path, index: Path | None, backend: str | None, milvus_uri: str | None) -> None:
    """Write the index (documents, chunks and their vectors) to the folder DEST."""
    from citekb.retrieval.backends.migrate import export_index

    kb = _open(ctx, index, backend, milvus_uri)
    report = export_index(kb.store, dest, kb.settings.embedding_model, show_progress=sys.stderr.isatty())
    click.echo(f"exported {report.documents} documents, {report.chunks} chunks, {report.vectors} vectors to {dest}")


@click.command("import")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--backend", type=_BACKEND, help="write into this backend (default: $CITEKB_BACKEND, else faiss)")
@click.option("--milvus-uri", help="Milvus file or server URI (default: $CITEKB_MILVUS_URI, else INDEX/milvus.db)")
@click.option("--replace", is_flag=True, help="overwrite an index that is already there")
@click.pass_context
@guard
def import_cmd(ctx: click.Context, src: Path, index: Path | None, backend: str | None, milvus_uri: str | None,
               replace: bool) -> None:
    """Build the index from an export folder SRC, with its vectors as they are."""
    from citekb.retrieval.backends.migrate import import_index

    kb = _open(ctx, index, backend, milvus_uri)
    report = import_index(kb.store, src, kb.settings.embedding_model, replace=replace, show_progress=sys.stderr.isatty())
    click.echo(f"imported {report.documents} documents, {report.chunks} chunks, {report.vectors} vectors into {kb.settings.backend}")
