"""The "tinyllm" answer backend: a TinyLM checkpoint writes the answer, token by token, from
the question's best evidence sentences among the hits, each marked with its hit's number.
Copy-constrained (the default), the answer is a span quoted from one sentence followed by the
marker of the hit it comes from; free, it is any text whose markers name given hits. Either
way a citation is narrowed to the sentence that holds the quoted (or, failing that, the
best-matching) text."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

from citekb.ingest.document import Chunk
from citekb.ingest.errors import ConfigError
from citekb.retrieval.analyze import analyze
from citekb.retrieval.embed import Embedder
from citekb.retrieval.hit import Hit

from ..answer import Answer, Citation
from ..base import NOT_FOUND
from ..config import ExtractiveConfig, TinyLLMConfig
from ..extractive import answers, rank_sentences
from ..spans import candidate_spans
from .checkpoint import Checkpoint, load_checkpoint
from .constrain import CopyConstraint, MarkerConstraint
from .model import score_continuations
from .prompt import Passage, best_sentence, passages_of, prompt_with_flags, sentence_around, sentences
from .tokenizer import MAX_MARKERS


@lru_cache(maxsize=2)
def _load(directory: Path, stamp: float) -> Checkpoint:  # stamp: reload when the checkpoint changes
    return load_checkpoint(directory)


class TinyLMGenerator:
    name = "tinyllm"

    def __init__(self, checkpoint: Checkpoint, cfg: TinyLLMConfig = TinyLLMConfig(), embedder: Embedder | None = None,
                 quote_from: int | None = 1, span_search: bool = False, chooser: ExtractiveConfig = ExtractiveConfig()) -> None:
        if cfg.passages > MAX_MARKERS:
            raise ConfigError(f"tinyllm passages must be at most {MAX_MARKERS}")
        self.model = checkpoint.model
        self.tokenizer = checkpoint.tokenizer
        self.cfg = cfg
        self.embedder = embedder  # ranks the evidence sentences with the lexical score, as extractive does
        self.chooser = chooser  # the extractive backend's sentence chooser and abstention settings
        # Copy-constrained quotes come from the quote_from best evidence sentences only (None: any);
        # the others are context. On ../shared/data/qa the best-ranked sentence alone gave cited-page
        # precision 0.865 and F1 0.141 against 0.654 and 0.086 for the model's own pick of three.
        self.quote_from = quote_from
        # Greedy copy-constrained answers are chosen token by token; with span_search the whole
        # quote is (the likeliest allowed span). Off: on 83 questions of ../shared/data/qa it
        # favoured one-word quotes and scored F1 0.142 against greedy's 0.150.
        self.span_search = span_search
        trained = checkpoint.meta.get("train", {})
        # Evidence sentences as many and as long as the model saw in training, unless configured otherwise.
        self.passage_tokens = cfg.passage_tokens or int(trained.get("passage_tokens", 48))
        self.sentences = int(trained.get("sentences", 3))

    @classmethod
    def from_config(cls, cfg: TinyLLMConfig, embedder: Embedder | None = None,
                    chooser: ExtractiveConfig = ExtractiveConfig()) -> TinyLMGenerator:
        if cfg.model_dir is None:
            raise ConfigError("the tinyllm backend needs a model: `citekb ask --model DIR` or CITEKB_TINYLLM_MODEL "
                              "(train one with `citekb train --out DIR`)")
        directory = cfg.model_dir.resolve()
        config = directory / "config.json"
        return cls(_load(directory, config.stat().st_mtime if config.is_file() else 0.0), cfg, embedder, chooser=chooser)

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        *_, last = self.stream(question, hits)
        assert isinstance(last, Answer)
        return last

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str | Answer]:
        """Text deltas as tokens are written, then the finished Answer."""
        top = hits[: self.cfg.passages]
        chunks = [h.chunk for h in top]
        # The evidence is ranked, and the backend abstains, exactly as the extractive backend does.
        ranked = rank_sentences(question, chunks, self.embedder, self.chooser, [h.score for h in top])
        passages = passages_of(self.tokenizer, ranked, count=self.sentences, sentence_tokens=self.passage_tokens)
        if not passages or not answers(ranked, self.chooser):
            yield NOT_FOUND
            yield Answer(text=NOT_FOUND, citations=(), hits=tuple(hits), grounded=False)
            return
        prompt, flags = prompt_with_flags(self.tokenizer, passages, question)
        constraint: CopyConstraint | MarkerConstraint
        if self.cfg.copy_constrained:
            constraint = CopyConstraint(self.tokenizer, [p.tokens for p in passages], self.cfg.max_answer_tokens,
                                        starts=[p.word_starts() if self.quote_from is None or i < self.quote_from
                                                else [False] * len(p.tokens) for i, p in enumerate(passages)],
                                        ends=[p.word_ends() for p in passages],
                                        labels=[p.hit for p in passages], may_end=self._adds_to(question))
        else:
            constraint = MarkerConstraint(self.tokenizer, len(chunks))
        best = None
        if self.cfg.copy_constrained and self.cfg.answer_spans != "off":
            best = self.answer_span(question, prompt, flags, passages[0])
        if best is None and self.span_search:
            best = self._best_span(prompt, flags, passages, constraint)
        tokens: Iterable[int] = best if best is not None else self.model.generate(
            prompt, self.cfg.max_answer_tokens + 16,  # room to finish a word, then [n]
            temperature=self.cfg.temperature, top_k=self.cfg.top_k, top_p=self.cfg.top_p,
            stop=(self.tokenizer.eos,), allowed=constraint.allowed, flags=flags)
        out: list[int] = []
        pieces: list[tuple[list[int], int | None]] = [([], None)]  # text runs, each with the marker after it
        numbers: dict[int, int] = {}  # hit index -> its citation number in this answer
        shown = ""
        for token in tokens:
            out.append(token)
            passage = self.tokenizer.marker_number(token)
            if passage is not None:
                pieces[-1] = (pieces[-1][0], passage - 1)
                pieces.append(([], None))
            elif token != self.tokenizer.eos:
                pieces[-1][0].append(token)
            text = self._render(pieces, numbers)
            # A character split over byte tokens shows once it is whole.
            if len(text) > len(shown) and not text.endswith("\ufffd") and text.startswith(shown):
                yield text[len(shown):]
                shown = text
        answer = self._answer(pieces, numbers, chunks, passages, constraint, hits)
        if answer.text.startswith(shown) and answer.text != shown:
            yield answer.text[len(shown):]
        yield answer

    def span_options(self, question: str, passage: Passage) -> list[list[int]]:
        """The answer-shaped spans of passage for question (generation/spans.py), best first by
        their heuristic score, as token runs of passage followed by its hit's marker: only spans
        that begin and end on the passage's token boundaries."""
        if not passage.tokens:
            return []
        base, stop = passage.offsets[0][0], passage.offsets[-1][1]
        text = passage.chunk.text[base:stop]
        starts = {passage.char_range(i, i + 1)[0]: i for i, ok in enumerate(passage.word_starts()) if ok}
        ends = {passage.char_range(0, j)[1]: j for j, ok in enumerate(passage.word_ends()) if ok and j > 0}
        marker = self.tokenizer.markers[passage.hit]
        options = []
        for span in candidate_spans(text, question, embedder=self.embedder):
            first, last = starts.get(base + span.start), ends.get(base + span.end)
            if first is not None and last is not None and first < last <= first + self.cfg.max_answer_tokens:
                options.append([*passage.tokens[first:last], marker])
        return options

    def answer_span(self, question: str, prompt: list[int], flags: list[int], passage: Passage) -> list[int] | None:
        """The quote (with its marker and <eos>) among passage's answer-shaped spans: the first by
        their heuristic score, or with answer_spans "model" the one TinyLM finds likeliest per
        token (log P of the span, its marker and <eos>, over the token count); the whole passage
        when it has no such span. None: an empty passage."""
        options = self.span_options(question, passage)
        if not options:  # no answer-shaped span (only the question's words, or none aligned): the sentence
            return [*passage.tokens, self.tokenizer.markers[passage.hit], self.tokenizer.eos] if passage.tokens else None
        if self.cfg.answer_spans == "heuristic" or len(options) == 1:
            return [*options[0], self.tokenizer.eos]
        allowed = set(passage.tokens) | {options[0][-1], self.tokenizer.eos}
        full = [[*o, self.tokenizer.eos] for o in options]
        scores = score_continuations(self.model, prompt, full, flags=flags, candidates=allowed)
        best = max(range(len(full)), key=lambda i: (scores[i] / len(full[i]), -i))
        return full[best]

    def _best_span(self, prompt: list[int], flags: list[int], passages: list[Passage],
                   constraint: CopyConstraint | MarkerConstraint) -> list[int] | None:
        """The quote the model finds likeliest, whole: every span the constraint allows (whole
        words of the sentences quoted from, at most max_answer_tokens, holding a word the question
        does not) scored with its marker by log P under the model. None: no such span."""
        if not isinstance(constraint, CopyConstraint) or self.cfg.temperature > 0:
            return None
        options: list[list[int]] = []
        for passage in passages[: self.quote_from or len(passages)]:
            starts, ends, tokens = passage.word_starts(), passage.word_ends(), passage.tokens
            marker = self.tokenizer.markers[passage.hit]
            for i in (i for i in range(len(tokens)) if starts[i]):
                for j in range(i + 1, min(len(tokens), i + self.cfg.max_answer_tokens) + 1):
                    if ends[j] and (constraint.may_end is None or constraint.may_end(tokens[i:j])):
                        options.append([*tokens[i:j], marker])
        if not options:
            return None
        allowed = {t for p in passages for t in p.tokens} | {self.tokenizer.markers[p.hit] for p in passages}
        scores = score_continuations(self.model, prompt, options, flags=flags, candidates=allowed | {self.tokenizer.eos})
        best = max(range(len(options)), key=lambda i: scores[i])
        return [*options[best], self.tokenizer.eos]

    def _adds_to(self, question: str) -> Callable[[Sequence[int]], bool]:
        """Does a quote hold a term the question does not? An answer tells something new."""
        asked = set(analyze(question))
        return lambda span: bool(set(analyze(self.tokenizer.decode(list(span)))) - asked)

    def _render(self, pieces: list[tuple[list[int], int | None]], numbers: dict[int, int]) -> str:
        parts = []
        for run, passage in pieces:
            text = self.tokenizer.decode(run).strip()
            if passage is not None:
                n = numbers.setdefault(passage, len(numbers) + 1)
                text = f"{text} [{n}]" if text else f"[{n}]"
            if text:
                parts.append(text)
        return " ".join(parts)

    def _answer(self, pieces: list[tuple[list[int], int | None]], numbers: dict[int, int], chunks: list[Chunk],
                passages: list[Passage], constraint: CopyConstraint | MarkerConstraint, hits: Sequence[Hit]) -> Answer:
        cited = [(run, p) for run, p in pieces if p is not None and self.tokenizer.decode(run).strip()]
        if not cited:  # nothing quoted, or text without a source: never an answer from nowhere
            return Answer(text=NOT_FOUND, citations=(), hits=tuple(hits), grounded=False)
        citations: dict[int, Citation] = {}
        for run, p in cited:
            n = numbers[p]
            if n not in citations:
                citations[n] = self._cite(n, chunks[p], p, run, passages, constraint)
        return Answer(text=self._render([(r, p) for r, p in pieces if p is not None], numbers),
                      citations=tuple(citations[n] for n in sorted(citations)), hits=tuple(hits), grounded=True)

    def _cite(self, n: int, chunk: Chunk, hit: int, run: list[int], passages: list[Passage],
              constraint: CopyConstraint | MarkerConstraint) -> Citation:
        """The citation of the hit-th hit for the text run: the sentence holding the quoted span."""
        found = None
        if isinstance(constraint, CopyConstraint):
            for index, passage in enumerate(passages):
                at = constraint.span_positions(run, index) if passage.hit == hit else []
                if at:
                    found = passage.char_range(at[0], at[0] + len(run))
                    break
        else:
            text = self.tokenizer.decode(run).strip()
            i = chunk.text.find(text) if text else -1
            if i >= 0:
                found = (i, i + len(text))
        if found is None:  # free text not in the passage: cite the sentence closest to it
            spans = sentences(chunk)
            found = spans[best_sentence(chunk, self.tokenizer.decode(run))] if spans else (0, len(chunk.text))
        start, end = sentence_around(chunk, *found)
        return Citation(n=n, chunk_id=chunk.chunk_id, locator=chunk.locate(start, end), quote=chunk.text[start:end])
