"""Shared fixtures: tiny documents generated on the fly, and a tiny local cross-encoder.

Nothing here touches the network: HF_HUB_OFFLINE is set before any Hugging Face import, and
models are built from random weights and a hand-written vocabulary."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# `from fakes import HashEmbedder` works under --import-mode=importlib, which adds no test
# folder to sys.path on its own.
TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from fakes import HashEmbedder  # noqa: E402
from tiny_docs import MARKDOWN_TEXT, write_docx, write_pdf  # noqa: E402
from tiny_index import build_snapshot  # noqa: E402

from citekb.ingest.chunking import chunk  # noqa: E402
from citekb.ingest.config import IngestConfig  # noqa: E402
from citekb.ingest.document import Chunk, Document  # noqa: E402
from citekb.ingest.ids import doc_id_for_file  # noqa: E402
from citekb.ingest.pipeline import default_extractors, extract  # noqa: E402
from citekb.retrieval.embed import Embedder  # noqa: E402
from citekb.retrieval.store import Snapshot  # noqa: E402


# --------------------------------------------------------------------------- documents

@pytest.fixture(scope="session")
def pdf_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-page PDF: a title, numbered section headings, body paragraphs and "- N -" footers."""
    path = tmp_path_factory.mktemp("pdf") / "field_guide.pdf"
    write_pdf(path)
    return path


@pytest.fixture(scope="session")
def docx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-page DOCX: Heading 1 title, Heading 2 sections, a table and explicit page breaks."""
    path = tmp_path_factory.mktemp("docx") / "travel_policy.docx"
    write_docx(path)
    return path


@pytest.fixture(scope="session")
def markdown_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("md") / "security.md"
    path.write_text(MARKDOWN_TEXT, "utf-8")
    return path


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory, pdf_path: Path, docx_path: Path, markdown_path: Path) -> Path:
    """The three tiny documents in one folder (read-only by convention: copy before changing)."""
    root = tmp_path_factory.mktemp("corpus")
    for source in (pdf_path, docx_path, markdown_path):
        (root / source.name).write_bytes(source.read_bytes())
    return root


# --------------------------------------------------------------------------- index

@pytest.fixture(scope="session")
def tiny_documents(pdf_path: Path, docx_path: Path, markdown_path: Path) -> list[tuple[Document, list[Chunk]]]:
    """The three tiny documents extracted and chunked with the default settings."""
    cfg = IngestConfig()
    out = []
    for path in (pdf_path, docx_path, markdown_path):
        document = extract(path, doc_id_for_file(path), cfg, default_extractors())
        out.append((document, chunk(document, cfg.chunking)))
    return out


@pytest.fixture
def make_snapshot(tiny_documents: list[tuple[Document, list[Chunk]]]) -> Callable[..., Snapshot]:
    """make_snapshot(embedder=HashEmbedder()): a fresh in-memory Snapshot of the tiny documents."""

    def make(embedder: Embedder | None = None) -> Snapshot:
        return build_snapshot(tiny_documents, embedder or HashEmbedder())

    return make


# --------------------------------------------------------------------------- models

_VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] the a an of to in is are and or for on with how many what when where "
    "who days day leave annual paid pump filter replace warranty months policy travel hotel flight "
    "password passwords security device laptop . , ? ! ##s ##ing ##ed"
).split()


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a randomly initialised 2-layer BERT cross-encoder (one logit) and its
    tokenizer, in the layout CrossEncoder(model_dir) loads. Built locally, never downloaded."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-cross-encoder")
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(_VOCAB) + "\n", "utf-8")
    # from_pretrained reads vocab.txt on every transformers version (the constructor's argument
    # was renamed from vocab_file to vocab in 5.0, and the old name is silently ignored).
    tokenizer = BertTokenizerFast.from_pretrained(str(directory), do_lower_case=True)
    assert tokenizer.convert_tokens_to_ids("pump") == _VOCAB.index("pump"), "the tokenizer lost its vocabulary"
    config = BertConfig(
        vocab_size=len(_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=1,
        initializer_range=0.2,  # wider than BERT's 0.02, so scores differ visibly between passages
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
