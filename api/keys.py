"""API keys: created and revoked with `citekb keys`, checked by the HTTP server.

A key is ``ckb_<id>_<secret>``: the id names its record, the secret (32 random bytes) proves it.
Only the secret's sha256 is stored, in ``INDEX/keys.json``: a secret of that much entropy cannot
be guessed from its hash, so a slow password hash would add cost and no safety. Each record says
which collections the key may read or write and which access groups' documents it may read::

    {"version": 1, "keys": [{"id": "3f9a2c1b7d04", "name": "portal", "sha256": "...",
      "collections": {"default": "read"}, "groups": ["hr"], "created_at": ..., "revoked_at": null}]}

The server re-reads the file when it changes, so a key created or revoked from the CLI takes
effect on the next request, without a restart."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from citekb.ingest.errors import CitekbError, ConfigError
from citekb.retrieval.store import check_groups

Right = Literal["read", "write"]
RIGHTS: tuple[Right, ...] = ("read", "write")
ALL = "*"  # in a key's collections: every collection; in its groups: every group
PREFIX = "ckb_"
KEYS_FILE = "keys.json"
_KEY_PATTERN = re.compile(r"ckb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_COLLECTION_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class ApiKeyError(CitekbError):
    """A key that cannot be found or revoked as asked."""


class KeyFileError(CitekbError):
    """The key file cannot be read: the server refuses every request rather than serve openly."""


@dataclass(slots=True)
class ApiKey:
    id: str
    name: str
    sha256: str  # of the secret
    collections: dict[str, Right]  # collection name (or "*") -> the right on it; write includes read
    groups: list[str]  # access groups whose documents it reads; ["*"]: all; []: only documents without groups
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def right(self, collection: str) -> Right | None:
        """The key's right on collection: its own entry, else the "*" entry, else None."""
        return self.collections.get(collection, self.collections.get(ALL))


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    secret: str  # the full "ckb_..." string, shown once and never stored


def parse_scope(scope: str) -> tuple[str, Right]:
    """ "hr:write" -> ("hr", "write"); "hr" -> ("hr", "read"); "*:read" is every collection."""
    name, _, right = scope.partition(":")
    right = right or "read"
    if right not in RIGHTS:
        raise ConfigError(f"invalid right {right!r} in {scope!r}: use read or write")
    if name != ALL:
        check_collection_name(name)
    return name, right


def is_collection_name(name: str) -> bool:
    return _COLLECTION_PATTERN.fullmatch(name) is not None


def check_collection_name(name: str) -> str:
    if not is_collection_name(name):
        raise ConfigError(f"invalid collection name {name!r}: use 1-64 lowercase letters, digits, '_' or '-', "
                          "starting with a letter or digit")
    return name


@dataclass
class KeyStore:
    """The keys of one server, in a JSON file; reads reload it when it changes on disk."""

    path: Path
    _keys: dict[str, ApiKey] = field(default_factory=dict, init=False)
    _stamp: tuple[int, int, int] | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @classmethod
    def for_index(cls, index: Path) -> KeyStore:
        return cls(index / KEYS_FILE)

    def keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._lock:
            self._reload()
            return sorted(self._keys.values(), key=lambda k: k.created_at)

    def has_active(self) -> bool:
        return any(k.active for k in self.keys())

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is; None for anything else (malformed, unknown, revoked)."""
        match = _KEY_PATTERN.fullmatch(secret)
        if match is None:
            return None
        with self._lock:
            self._reload()
            key = self._keys.get(match.group(1))
        if key is None or not key.active:
            return None
        digest = hashlib.sha256(match.group(2).encode()).hexdigest()
        return key if hmac.compare_digest(digest, key.sha256) else None

    def create(self, name: str, collections: Mapping[str, Right], groups: Sequence[str]) -> CreatedKey:
        if not name.strip() or len(name) > 100:
            raise ConfigError("a key needs a name of 1-100 characters (who or what uses it)")
        if not collections:
            raise ConfigError("a key needs at least one collection to read or write")
        for collection, right in collections.items():
            parse_scope(f"{collection}:{right}")
        groups = [ALL] if ALL in groups else check_groups(groups)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)  # 43 characters
        key = ApiKey(id=key_id, name=name.strip(), sha256=hashlib.sha256(secret.encode()).hexdigest(),
                     collections=dict(collections), groups=list(groups), created_at=time.time())
        with self._editing() as keys:
            keys[key.id] = key
        return CreatedKey(key, f"{PREFIX}{key_id}_{secret}")

    def revoke(self, key_id: str) -> ApiKey:
        with self._editing() as keys:
            key = keys.get(key_id)
            if key is None:
                raise ApiKeyError(f"no API key with id {key_id!r}; `citekb keys list` shows them")
            if key.active:
                key.revoked_at = time.time()
        return key

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, ApiKey]]:
        """The keys under an exclusive file lock, written back atomically (a reader never sees half a file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / ".keys.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self._lock:
                    self._stamp = None
                    self._reload()
                    keys = dict(self._keys)
                yield keys
                tmp = self.path.with_name(f".{KEYS_FILE}.tmp")
                data = {"version": 1, "keys": [asdict(k) for k in sorted(keys.values(), key=lambda k: k.created_at)]}
                # The file names who may read what; only its owner should read even the hashes.
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, indent=1)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
                with self._lock:
                    self._stamp = None
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _reload(self) -> None:
        """Read the file again if it changed since last read. Call under _lock."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = {}, None
            return
        # Every write is a new file (os.replace), so its inode tells a change even within one mtime tick.
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text("utf-8"))
            keys = {k["id"]: ApiKey(**k) for k in data["keys"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Failing closed: a damaged key file must not turn into "no keys", which is an open server.
            raise KeyFileError(f"cannot read the API key file {self.path.name}: {type(exc).__name__}: {exc}") from exc
        self._keys, self._stamp = keys, stamp
