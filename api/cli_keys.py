"""`citekb keys` (API keys: create, list, revoke) and `citekb collections` (create, list, delete).

Both work on the server's index directory (--index, CITEKB_INDEX): keys in INDEX/keys.json,
collections in INDEX/collections/NAME. A running server sees the changes on its next request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from citekb.api.cli_support import INDEX_HELP, guard


def _index(index: Path | None) -> Path:
    from citekb.api.settings import Settings

    return index if index is not None else Settings().index


def _key_json(key: Any) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "collections": key.collections, "groups": key.groups,
            "created_at": key.created_at, "revoked_at": key.revoked_at, "active": key.active}


@click.group()
def keys() -> None:
    """Create, list and revoke the API keys of a server (see README, "Embedding in portals")."""


@keys.command("create")
@click.argument("name")
@click.option("--collection", "-c", "scopes", multiple=True, metavar="NAME[:read|write]",
              help="a collection the key may read (NAME or NAME:read) or read and write (NAME:write); '*' is every "
                   "collection; repeat for more (default: default:read)")
@click.option("--group", "-g", "groups", multiple=True,
              help="an access group whose documents the key reads; '*' reads all; repeat for more "
                   "(default: none, so only documents without groups)")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@guard
def keys_create(name: str, scopes: tuple[str, ...], groups: tuple[str, ...], index: Path | None, as_json: bool) -> None:
    """Create a key for NAME (who or what uses it) and print it. The key is shown only now:
    only its hash is stored."""
    from citekb.api.keys import KeyStore, parse_scope

    rights = dict(parse_scope(s) for s in (scopes or ("default:read",)))
    created = KeyStore.for_index(_index(index)).create(name, rights, list(groups))
    if as_json:
        click.echo(json.dumps({**_key_json(created.key), "key": created.secret}, indent=1))
        return
    click.echo(created.secret)
    scope = ", ".join(f"{c}:{r}" for c, r in created.key.collections.items())
    click.echo(f"key {created.key.id} for {name!r}: {scope}; groups: {', '.join(created.key.groups) or '(none)'}. "
               "Store it now: it cannot be shown again.", err=True)


@keys.command("list")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@guard
def keys_list(index: Path | None, as_json: bool) -> None:
    """The keys (never their secrets), revoked ones marked."""
    from citekb.api.keys import KeyStore

    found = KeyStore.for_index(_index(index)).keys()
    if as_json:
        click.echo(json.dumps({"keys": [_key_json(k) for k in found]}, indent=1))
        return
    for k in found:
        scope = ", ".join(f"{c}:{r}" for c, r in k.collections.items())
        state = "active" if k.active else "REVOKED"
        click.echo(f"{k.id}  {state:7}  {k.name}  [{scope}]  groups: {', '.join(k.groups) or '(none)'}")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@guard
def keys_revoke(key_id: str, index: Path | None) -> None:
    """Revoke KEY_ID (as `keys list` shows it): every request with it fails from now on."""
    from citekb.api.keys import KeyStore

    key = KeyStore.for_index(_index(index)).revoke(key_id)
    click.echo(f"revoked {key.id} ({key.name})")


@click.group()
def collections() -> None:
    """Create, list and delete the collections a server serves beside its default one."""


def _collections(index: Path | None, ctx: click.Context) -> Any:
    from citekb.api.cli_support import open_kb
    from citekb.api.collections import Collections

    return Collections(open_kb(ctx, index))


@collections.command("create")
@click.argument("name")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.pass_context
@guard
def collections_create(ctx: click.Context, name: str, index: Path | None) -> None:
    """Create collection NAME; fill it with `citekb ingest --collection NAME PATH`."""
    registry = _collections(index, ctx)
    created = registry.create(name)
    click.echo(f"{'created' if created else 'exists:'} collection {name} at {registry.path(name)}")


@collections.command("list")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@guard
def collections_list(ctx: click.Context, index: Path | None, as_json: bool) -> None:
    registry = _collections(index, ctx)
    rows = [{"name": n, "documents": len(registry.get(n).documents()), "path": str(registry.path(n))} for n in registry.names()]
    if as_json:
        click.echo(json.dumps({"collections": rows}, indent=1))
        return
    for row in rows:
        click.echo(f"{row['name']}  {row['documents']} documents  {row['path']}")


@collections.command("delete")
@click.argument("name")
@click.option("--index", type=click.Path(path_type=Path), help=INDEX_HELP)
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_context
@guard
def collections_delete(ctx: click.Context, name: str, index: Path | None, yes: bool) -> None:
    """Delete collection NAME with all its documents."""
    registry = _collections(index, ctx)
    registry.get(name)  # not found: the error now, before asking
    if not yes:
        click.confirm(f"delete collection {name} and all its documents?", abort=True)
    registry.delete(name)
    click.echo(f"deleted collection {name}")
