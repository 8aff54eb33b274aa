"""What every citekb command shares: opening the knowledge base from options and settings,
printing JSON, and the error boundary that maps failures to exit codes (0 ok, 1 an error,
2 a usage error) without ever showing a traceback. Command modules (``cli_*.py``) import these;
``cli.py`` registers them on the ``citekb`` group."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError

from citekb.ingest.errors import CitekbError

log = logging.getLogger("citekb.cli")
F = TypeVar("F", bound=Callable[..., Any])

INDEX_HELP = "index directory (default: $CITEKB_INDEX, else ./.citekb)"


def open_kb(ctx: click.Context, index: Path | None, **overrides: Any):  # type: ignore[no-untyped-def]
    from citekb.api.kb import KnowledgeBase
    from citekb.api.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if index is not None:
        values["index"] = index
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise click.UsageError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    return KnowledgeBase(settings)


def emit(model: BaseModel) -> None:
    click.echo(json.dumps(model.model_dump(mode="json"), ensure_ascii=False, indent=1))


def guard(fn: F) -> F:
    """The boundary: a CitekbError is a message and exit 1; anything else is logged with its
    traceback (shown with -vv) and reported in one line, never as a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except CitekbError as exc:
            click.echo(f"citekb: error: {exc}", err=True)
            sys.exit(1)
        except FileNotFoundError as exc:
            click.echo(f"citekb: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("citekb: interrupted; the index is unchanged since its last commit", err=True)
            sys.exit(130)
        except Exception as exc:
            log.debug("unexpected error", exc_info=True)
            click.echo(f"citekb: internal error: {type(exc).__name__}: {exc} (run with -vv for details)", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
