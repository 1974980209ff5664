"""Per-type token buckets: the user-space rate limit after the kernel's budget.

The kernel's budget is per CPU (no shared counter on the hot path), so a flood
on every CPU can still pass CPUs x budget records a second; this bucket caps
what leaves the agent per type, node-wide. The clock is passed in so the
limiter is tested without sleeping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from time import monotonic


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; starts full."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = monotonic) -> None:
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._tokens, self._last = float(burst), clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class TypeLimiter:
    """One bucket per event name; counts what each refused."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = monotonic) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._buckets: dict[str, TokenBucket] = {}
        self.refused: defaultdict[str, int] = defaultdict(int)

    def allow(self, name: str) -> bool:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = TokenBucket(self._rate, self._burst, self._clock)
        if bucket.take():
            return True
        self.refused[name] += 1
        return False
