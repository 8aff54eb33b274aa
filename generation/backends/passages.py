"""What the model-writing backends share: the prompt of numbered passages, and the mapping of
the [n] markers the model writes back to citations of those passages, as the text streams."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence

from citekb.retrieval.hit import Hit

from ..answer import Answer, Citation
from ..base import NOT_FOUND

log = logging.getLogger(__name__)

# What the model is told to write when the passages do not answer; any reply that is only this
# (give or take case, punctuation and markers) is taken as "not in the documents".
NO_ANSWER = "NOT IN DOCUMENTS"

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. Write a short answer "
    "in the language of the question. End every sentence with the number of the passage that "
    "says it, in square brackets, like [1] or [2][3]. Use no other knowledge. If the passages do "
    f"not answer the question, reply with exactly: {NO_ANSWER}"
)

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,，]\s*\d{1,3})*)\]")
_MAYBE_MARKER = re.compile(r"\[[\d\s,，]{0,24}\Z")  # what a marker cut off mid-stream can look like
_NO_ANSWER = re.compile(r"\W*" + r"\W+".join(NO_ANSWER.split()) + r"\W*", re.IGNORECASE)


def build_messages(question: str, hits: Sequence[Hit], max_passage_chars: int) -> list[dict[str, str]]:
    """Chat messages: the instructions, then the passages numbered [1]..[len(hits)] (each with
    where it comes from, cut to max_passage_chars) and the question."""
    passages = []
    for n, hit in enumerate(hits, 1):
        loc = hit.chunk.locator
        where = loc.source + (f", page {loc.page}" if loc.page is not None else "")
        where += f", {loc.section_path}" if loc.section else ""
        passages.append(f"[{n}] ({where})\n{hit.chunk.text[:max_passage_chars]}")
    user = "Passages:\n\n" + "\n\n".join(passages) + f"\n\nQuestion: {question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


class MarkerMapper:
    """Rewrites the model's [p] passage markers as [n] citation numbers, n counting from 1 in
    the order passages are first cited, as text arrives in pieces; markers naming a passage that
    was not given are dropped (and counted in invalid). feed() holds back a trailing "[12" until
    it knows whether a marker follows."""

    def __init__(self, passages: int) -> None:
        self.passages = passages
        self.cited: dict[int, int] = {}  # passage number -> citation number
        self.invalid: list[int] = []
        self._held = ""  # a possible marker's start, until the next delta says
        self._space = ""  # trailing whitespace, shown only once more text follows it
        self._started = False

    def feed(self, delta: str) -> str:
        """The rewritten text that can be shown now. The concatenation of everything feed and
        finish return is the whole reply rewritten, without leading or trailing whitespace."""
        out = self._map(delta)
        if not self._started:
            out = out.lstrip()
            self._started = bool(out)
        body = out.rstrip()
        if not body:
            self._space += out
            return ""
        out, self._space = self._space + body, out[len(body):]
        return out

    def finish(self) -> str:
        held, self._held = self._held, ""
        return (self._space + held).rstrip() if held.strip() else ""

    def _map(self, delta: str) -> str:
        text, self._held = self._held + delta, ""
        out = []
        while True:
            at = text.find("[")
            if at < 0:
                out.append(text)
                break
            out.append(text[:at])
            text = text[at:]
            match = _MARKER.match(text)
            if match:
                out.append(self._rewrite(match.group(1)))
                text = text[match.end():]
            elif _MAYBE_MARKER.match(text):
                self._held = text
                break
            else:
                out.append("[")
                text = text[1:]
        return "".join(out)

    def _rewrite(self, group: str) -> str:
        out = []
        for p in (int(x) for x in re.split(r"\s*[,，]\s*", group)):
            if 1 <= p <= self.passages:
                out.append(f"[{self.cited.setdefault(p, len(self.cited) + 1)}]")
            else:
                self.invalid.append(p)
        return "".join(dict.fromkeys(out))


def make_answer(text: str, hits: Sequence[Hit], mapper: MarkerMapper) -> Answer:
    """The Answer for a model's reply already rewritten by mapper: each cited passage a Citation
    of its whole chunk (verification narrows it to the sentences that support the claim)."""
    text = text.strip()
    if not text or _NO_ANSWER.fullmatch(_MARKER.sub("", text)):
        return Answer(text=NOT_FOUND, citations=(), hits=tuple(hits), grounded=False)
    if mapper.invalid:
        log.warning("dropped markers naming passages that were not given markers=%s passages=%d",
                    sorted(set(mapper.invalid)), mapper.passages)
    citations = tuple(
        Citation(n=n, chunk_id=hits[p - 1].chunk.chunk_id, locator=hits[p - 1].chunk.locator, quote=hits[p - 1].chunk.text)
        for p, n in sorted(mapper.cited.items(), key=lambda item: item[1])
    )
    return Answer(text=text, citations=citations, hits=tuple(hits), grounded=True)


def stream_reply(deltas: Iterable[str], hits: Sequence[Hit]) -> Iterator[str | Answer]:
    """A model's reply streamed as rewritten text deltas, then its Answer (generation.base's
    stream contract: the deltas join to Answer.text). Text that may still turn out to be
    NO_ANSWER is held back, so "not in the documents" streams as NOT_FOUND."""
    mapper = MarkerMapper(len(hits))
    shown: list[str] = []
    held, holding = "", True
    for delta in deltas:
        out = mapper.feed(delta)
        if holding and out:
            held += out
            if _could_be_no_answer(held):
                continue
            out, held, holding = held, "", False
        if out:
            shown.append(out)
            yield out
    tail = held + mapper.finish()
    answer = make_answer("".join(shown) + tail, hits, mapper)
    if not answer.grounded and not shown:
        tail = NOT_FOUND
    if tail:
        yield tail
    yield answer


def _could_be_no_answer(text: str) -> bool:
    words = re.sub(r"[^\w\s]", "", text).upper().split()
    target = NO_ANSWER.split()
    return len(words) <= len(target) and words[:-1] == target[: len(words) - 1] and (
        not words or target[len(words) - 1].startswith(words[-1]))
