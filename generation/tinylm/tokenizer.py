"""The TinyLM tokenizer: SentencePiece BPE trained on the corpus, with the chat tokens and the
[n] citation markers as control symbols. Control symbols never come out of encoding text, so
a passage that happens to contain "[1]" or "<|user|>" cannot forge a marker; they are placed by id.

Text is not normalised (identity rule, spaces kept as they are) so a token's characters are the
passage's own characters: a copied span maps back to exact offsets for its citation."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import sentencepiece as spm

from citekb.ingest.errors import ConfigError, ModelError

SPECIAL_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|sep|>")
MAX_MARKERS = 16  # [1]..[16]: no more passages than this are ever numbered in a prompt
MODEL_FILE = "tokenizer.model"


def marker_text(n: int) -> str:
    return f"[{n}]"


class TinyTokenizer:
    """Wraps a SentencePieceProcessor with the ids of the special tokens and markers."""

    def __init__(self, model_proto: bytes) -> None:
        self.proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self.sp.get_piece_size()
        ids = {piece: self.sp.piece_to_id(piece) for piece in (*SPECIAL_TOKENS, *map(marker_text, range(1, MAX_MARKERS + 1)))}
        if any(self.sp.id_to_piece(i) != piece for piece, i in ids.items()):
            raise ModelError("tokenizer model lacks the TinyLM special tokens; train it with citekb train")
        self.system, self.user, self.assistant, self.sep = (ids[t] for t in SPECIAL_TOKENS)
        self.markers = tuple(ids[marker_text(n)] for n in range(1, MAX_MARKERS + 1))
        self.eos = self.sp.eos_id()
        self.bos = self.sp.bos_id()
        self.pad = self.sp.pad_id()
        self._marker_n = {token: n for n, token in enumerate(self.markers, 1)}

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, character_coverage: float = 0.9995) -> TinyTokenizer:
        """A BPE model of at most vocab_size pieces learnt from texts (fewer when the text is too
        small to fill it). character_coverage below 1 leaves rare CJK characters to byte fallback."""
        if vocab_size < 64:
            raise ConfigError(f"tokenizer vocab_size {vocab_size} is too small; use at least 64")
        lines = [line for text in texts for line in text.splitlines() if line.strip()]
        if not lines:
            raise ConfigError("cannot train a tokenizer: the corpus has no text")
        out = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=out, model_type="bpe", vocab_size=vocab_size,
                hard_vocab_limit=False, character_coverage=character_coverage, byte_fallback=True,
                normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True,
                control_symbols=[*SPECIAL_TOKENS, *map(marker_text, range(1, MAX_MARKERS + 1))],
                pad_id=0, unk_id=1, bos_id=2, eos_id=3, max_sentence_length=1 << 16,
                num_threads=1, minloglevel=2,
            )
        except RuntimeError as exc:  # sentencepiece reports bad sizes as RuntimeError
            detail = str(exc).split("] ", 1)[-1]
            raise ConfigError(f"cannot train a tokenizer with vocab_size {vocab_size}: {detail}") from None
        return cls(out.getvalue())

    @classmethod
    def load(cls, directory: Path) -> TinyTokenizer:
        path = directory / MODEL_FILE
        if not path.is_file():
            raise ModelError(f"no tokenizer in {directory}: expected {MODEL_FILE}")
        return cls(path.read_bytes())

    def save(self, directory: Path) -> None:
        (directory / MODEL_FILE).write_bytes(self.proto)

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text))

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of text and each token's [start, end) character range in it."""
        proto = self.sp.encode(text, return_type="proto")
        ids, offsets = [], []
        for piece in proto.pieces:
            ids.append(piece.id)
            offsets.append((piece.begin, piece.end))
        # begin/end are byte offsets into the UTF-8 text: convert to character offsets.
        data = text.encode("utf-8")
        to_char = _byte_to_char(data)
        return ids, [(to_char[b], to_char[e]) for b, e in offsets]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ids; markers as "[n]", other control tokens dropped."""
        return "".join(self.iter_text(ids))

    def iter_text(self, ids: Sequence[int]) -> Iterator[str]:
        run: list[int] = []
        for token in ids:
            if token in self._marker_n:
                if run:
                    yield self.sp.decode(run)
                    run = []
                yield marker_text(self._marker_n[token])
            elif not self.sp.is_control(token):
                run.append(token)
        if run:
            yield self.sp.decode(run)

    def marker_number(self, token: int) -> int | None:
        """n for the id of marker [n], else None."""
        return self._marker_n.get(token)


def _byte_to_char(data: bytes) -> list[int]:
    """For each byte offset 0..len(data), the character offset it falls in."""
    out = []
    char = -1
    for byte in data:
        if byte & 0xC0 != 0x80:  # not a continuation byte: a new character starts here
            char += 1
        out.append(char)
    out.append(char + 1)
    return out
