"""The citekb error tree. Ingest is upstream of every stage, so all stages import from here.

    CitekbError
    ├── ConfigError              a setting or argument is invalid
    ├── UnsupportedFormatError   a file type citekb does not read
    ├── ExtractionError          a supported file that cannot be read (corrupt, encrypted, empty, too large)
    ├── IndexNotFoundError       no index at the given path
    ├── IndexMismatchError       the index was built differently (embedding model, format version)
    ├── ModelError               a model directory is missing or unusable
    └── DocumentNotFoundError    no document with that doc_id
"""

from __future__ import annotations


class CitekbError(Exception):
    """Root of every error citekb raises on purpose; its message is fit for a user."""


class ConfigError(CitekbError):
    pass


class UnsupportedFormatError(CitekbError):
    pass


class ExtractionError(CitekbError):
    pass


class IndexNotFoundError(CitekbError):
    pass


class IndexMismatchError(CitekbError):
    pass


class ModelError(CitekbError):
    pass


class DocumentNotFoundError(CitekbError):
    pass


def reason(exc: BaseException, limit: int = 200) -> str:
    """A library exception as the reason part of our message: its last non-empty line (some
    libraries, rapidocr among them, put a whole traceback in the message, which must never
    reach a user), cut to limit characters; the type's name when the message is empty."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:limit]
