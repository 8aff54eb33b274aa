"""Grounded decoding: which tokens TinyLM may write next.

Copy-constrained (the default): the answer is one span of the given passages followed by the
marker of a passage that holds that span, then the end. Outside the marker, a token is allowed
only if the span so far plus that token occurs in some passage: a walk down the implicit suffix
trie of the passages, kept as the set of positions where the span so far ends. A marker is
allowed only for a passage in which the whole span occurs, so every answer is a quote of the
source it cites.

Free mode: any text, but a marker may only name a passage that was given."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .tokenizer import TinyTokenizer


@dataclass
class CopyConstraint:
    tokenizer: TinyTokenizer
    passages: Sequence[Sequence[int]]
    max_span_tokens: int = 32
    # Per passage, where a quote may start (a token index) and end (just before an index in
    # 0..len); None: anywhere. The generator passes word boundaries, so quotes are whole words.
    starts: Sequence[Sequence[bool]] | None = None
    ends: Sequence[Sequence[bool]] | None = None
    # Per passage, the index of the marker that cites it (several evidence sentences of one hit
    # share its marker); None: passage p is cited by marker p.
    labels: Sequence[int] | None = None
    # May the answer end after these tokens? None: always. The generator asks for a word the
    # question does not already hold, so "the [1]" or a quote of the question itself is no answer.
    may_end: Callable[[Sequence[int]], bool] | None = None
    _states: list[list[tuple[int, int]]] = field(default_factory=list, init=False)
    _seen: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        # Positions (passage, i): the span so far ends just before passages[passage][i].
        self._states = [[(p, i) for p, tokens in enumerate(self.passages) for i in range(len(tokens))
                         if self.starts is None or self.starts[p][i]]]

    def allowed(self, out: Sequence[int]) -> list[int]:
        """The tokens that may follow out (the answer so far); empty when it must stop."""
        if out and self.tokenizer.marker_number(out[-1]) is not None:
            return [self.tokenizer.eos]
        if out and out[-1] == self.tokenizer.eos:
            return []
        active = self._advance(out)
        markers = {self.tokenizer.markers[self.label(p)] for p, i in active if self.ends is None or self.ends[p][i]} if out else set()
        continuing = {self.passages[p][i] for p, i in active if i < len(self.passages[p])}
        if markers and continuing and self.may_end is not None and not self.may_end(out):
            markers = set()  # not an answer yet: quote on (unless the passage ends here)
        if len(out) >= self.max_span_tokens and markers:
            return sorted(markers)  # long enough: cite it now (past the limit only to finish a word)
        return sorted(markers | continuing)

    def label(self, passage: int) -> int:
        """The index of the marker that cites passage."""
        return passage if self.labels is None else self.labels[passage]

    def span_positions(self, span: Sequence[int], passage: int) -> list[int]:
        """Start indices in passages[passage] where span occurs."""
        tokens, n = self.passages[passage], len(span)
        return [i for i in range(len(tokens) - n + 1) if list(tokens[i:i + n]) == list(span)]

    def _advance(self, out: Sequence[int]) -> list[tuple[int, int]]:
        # _states[j] holds the positions after _seen[:j]; keep the part out agrees with.
        same = 0
        while same < min(len(out), len(self._seen)) and out[same] == self._seen[same]:
            same += 1
        del self._states[same + 1:], self._seen[same:]
        for token in out[same:]:
            self._seen.append(token)
            self._states.append([(p, i + 1) for p, i in self._states[-1]
                                 if i < len(self.passages[p]) and self.passages[p][i] == token])
        return self._states[len(out)]


@dataclass
class MarkerConstraint:
    """Free text, but only markers [1]..[k] of the k given passages."""

    tokenizer: TinyTokenizer
    k: int
    _allowed: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        banned = set(self.tokenizer.markers[self.k:]) | {self.tokenizer.bos, self.tokenizer.pad, self.tokenizer.system,
                                                         self.tokenizer.user, self.tokenizer.assistant, self.tokenizer.sep}
        self._allowed = [t for t in range(self.tokenizer.vocab_size) if t not in banned]

    def allowed(self, out: Sequence[int]) -> list[int]:
        if out and out[-1] == self.tokenizer.eos:
            return []
        return self._allowed
