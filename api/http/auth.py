"""Who is calling, and what they may read: the dependencies every route uses.

How a route uses them (FastAPI dependencies; the aliases are ``Annotated`` types)::

    from ..auth import ReadAccess, WriteAccess

    @router.get("/documents/{doc_id}")
    def original_file(doc_id: str, access: ReadAccess) -> FileResponse:
        record = access.document(doc_id)   # 404 unless it exists AND the caller may read it
        ...

- ``ReadAccess`` / ``WriteAccess`` resolve the caller (401 without a valid key when keys are in
  force, 429 past its rate limit), take the collection from the path parameter ``collection``
  (``/v1/collections/{collection}/...``; ``default`` on the plain ``/v1/...`` routes), refuse
  with 403 unless the caller may read (write) it, and give an ``Access``: ``access.kb`` is the
  collection's KnowledgeBase, ``access.groups`` the caller's access groups to pass to
  ``kb.search/ask/ask_stream/documents(..., groups=access.groups)``, and ``access.document(id)``
  / ``access.documents()`` return only documents the caller may read.
- ``require_read("name")`` / ``require_write("name")`` do the same for a collection fixed by the
  route rather than taken from the path.
- ``PrincipalDep`` is the caller alone (``Principal``: key id, per-collection rights, groups).

Auth mode (``Settings.auth``): "auto" lets anonymous callers do everything while no active key
exists (``citekb serve`` allows that only on a loopback address) and requires a key from the
moment one does; "required" always requires one."""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from citekb.api.collections import DEFAULT, Collections
from citekb.api.kb import KnowledgeBase
from citekb.api.keys import ALL, ApiKey, KeyStore, Right
from citekb.api.settings import Settings
from citekb.ingest.errors import ConfigError, DocumentNotFoundError
from citekb.retrieval.store import DocumentRecord, readable_by

from .ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller: an API key, or anonymous on an open server (which may do everything)."""

    key_id: str | None  # None: anonymous
    name: str
    collections: Mapping[str, Right] = field(default_factory=lambda: MappingProxyType({ALL: "write"}))
    groups: frozenset[str] | None = None  # None: reads documents of every group

    @classmethod
    def from_key(cls, key: ApiKey) -> Principal:
        groups = None if ALL in key.groups else frozenset(key.groups)
        return cls(key.id, key.name, MappingProxyType(dict(key.collections)), groups)

    @property
    def anonymous(self) -> bool:
        return self.key_id is None

    def right(self, collection: str) -> Right | None:
        return self.collections.get(collection, self.collections.get(ALL))

    def can_read(self, collection: str) -> bool:
        return self.right(collection) is not None  # write includes read

    def can_write(self, collection: str) -> bool:
        return self.right(collection) == "write"


ANONYMOUS = Principal(None, "anonymous")


@dataclass
class Server:
    """What the app's dependencies share (app.state.server): its collections, keys and limits."""

    settings: Settings
    collections: Collections
    keys: KeyStore
    limiter: RateLimiter

    @classmethod
    def for_kb(cls, kb: KnowledgeBase) -> Server:
        s = kb.settings
        return cls(s, Collections(kb), KeyStore.for_index(s.index), RateLimiter(s.rate_limit_per_min, s.rate_limit_burst))

    def keys_required(self) -> bool:
        return self.settings.auth == "required" or self.keys.has_active()

    def check_exposure(self, host: str) -> None:
        """ConfigError if serving on host would be open to other machines: no key in force and
        host not a loopback address."""
        if self.keys_required() or _is_loopback(host):
            return
        raise ConfigError(f"refusing to serve {host} without API keys: anyone who can reach it could read and change "
                          f"every document. Create a key (`citekb keys create NAME --index {self.settings.index}`), "
                          "set CITEKB_AUTH=required, or serve on 127.0.0.1")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def get_server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


def get_principal(request: Request) -> Principal:
    """The caller of this request, after its key's rate limit. 401 for a missing key where keys are in
    force, and for any key that is not an active one (even on an open server: a caller who sends
    a key expects it to count); 429 with Retry-After past the limit."""
    server = get_server(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        key = server.keys.verify(token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        principal = Principal.from_key(key)
    elif server.keys_required():
        raise HTTPException(401, "an API key is required: send the header Authorization: Bearer <key>",
                            headers={"WWW-Authenticate": "Bearer"})
    else:
        principal = ANONYMOUS
    request.state.key_id = principal.key_id  # for the access log
    # Limits are per key. Anonymous callers exist only on an open (development) server.
    wait_s = server.limiter.take(principal.key_id) if principal.key_id else 0.0
    if wait_s > 0:
        raise HTTPException(429, f"rate limit exceeded; retry in {math.ceil(wait_s)} s",
                            headers={"Retry-After": str(math.ceil(wait_s))})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True, slots=True)
class Access:
    """A caller's access to one collection: its KnowledgeBase and the groups it may read."""

    principal: Principal
    collection: str
    kb: KnowledgeBase

    @property
    def groups(self) -> frozenset[str] | None:
        """Pass as kb.search/ask/ask_stream/documents(groups=...): None reads every document."""
        return self.principal.groups

    def documents(self) -> list[DocumentRecord]:
        return self.kb.documents(self.groups)

    def document(self, doc_id: str) -> DocumentRecord:
        """doc_id's record; DocumentNotFoundError (404) when it is absent or the caller may not
        read it, alike, so a key cannot learn which documents of other groups exist."""
        record = self.kb.snapshot().documents.get(doc_id)
        if record is None or not readable_by(record, self.groups):
            raise DocumentNotFoundError(f"no document with doc_id {doc_id!r} in the index")
        return record


# The {collection} path parameter, checked against the names a collection may have.
CollectionPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="the collection's name")]


def collection_of(request: Request) -> str:
    """The collection a route serves: its ``collection`` path parameter, else the default."""
    return str(request.path_params.get("collection", DEFAULT))


def _access(request: Request, principal: Principal, collection: str, write: bool) -> Access:
    # Rights first, then existence: a key learns nothing about collections it may not use.
    allowed = principal.can_write(collection) if write else principal.can_read(collection)
    if not allowed:
        who = "anonymous callers" if principal.anonymous else f"API key {principal.key_id}"
        raise HTTPException(403, f"{who} may not {'write' if write else 'read'} collection {collection!r}")
    return Access(principal, collection, get_server(request).collections.get(collection))


def read_access(request: Request, principal: PrincipalDep) -> Access:
    return _access(request, principal, collection_of(request), write=False)


def write_access(request: Request, principal: PrincipalDep) -> Access:
    return _access(request, principal, collection_of(request), write=True)


ReadAccess = Annotated[Access, Depends(read_access)]
WriteAccess = Annotated[Access, Depends(write_access)]


def require_read(collection: str) -> Callable[[Request, Principal], Access]:
    """A dependency giving read Access to a collection the route names itself."""

    def dependency(request: Request, principal: PrincipalDep) -> Access:
        return _access(request, principal, collection, write=False)

    return dependency


def require_write(collection: str) -> Callable[[Request, Principal], Access]:
    def dependency(request: Request, principal: PrincipalDep) -> Access:
        return _access(request, principal, collection, write=True)

    return dependency
