"""`python tests/integration/hash_cli.py ARGS...` runs the citekb CLI as a real process, embedding
with the test HashEmbedder under the model id "test/hash-embedder" (select it with
CITEKB_EMBEDDING_MODEL=test/hash-embedder), for tests that need a process they can kill.

Production code never falls back to a fake: the embedder table gains the fake here, in the
test's own launcher, the way tests/api/conftest.py puts it there for in-process CLI tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `fakes`

from fakes import HashEmbedder  # noqa: E402

from citekb.api.cli import main  # noqa: E402
from citekb.retrieval import factory  # noqa: E402

HASH_MODEL = "test/hash-embedder"

if __name__ == "__main__":
    factory.EMBEDDERS[HASH_MODEL] = lambda precision: HashEmbedder()  # type: ignore[index]
    sys.exit(main())
