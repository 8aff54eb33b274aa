"""Token-bucket rate limiting, one bucket per caller (an API key id)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Buckets kept before full (idle) ones are dropped, so memory stays bounded however many callers.
MAX_BUCKETS = 10_000


class RateLimiter:
    """Each caller may send `burst` requests at once, then one every 60/per_min seconds on
    average. per_min 0 turns the limit off."""

    def __init__(self, per_min: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_min < 0 or burst < 1:
            raise ValueError(f"rate limit needs per_min >= 0 and burst >= 1, got {per_min} and {burst}")
        self.rate_s = per_min / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """Spend one token of caller's bucket: 0.0 if the request may go ahead, else the seconds
        until it could (the request is refused and spends nothing)."""
        if self.rate_s == 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate_s)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                return (1.0 - tokens) / self.rate_s
            self._buckets[caller] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._prune(now)
            return 0.0

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nothing."""
        full = [c for c, (t, then) in self._buckets.items() if t + (now - then) * self.rate_s >= self.burst]
        for caller in full:
            del self._buckets[caller]
