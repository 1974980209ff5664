"""Token buckets: the one rate limiter of the agent.

Used where a source outside the agent's control could flood it: kernel event
records per event type (the kernel's own budget is per CPU, so a flood on every
CPU still passes CPUs x budget a second) and node-API requests per caller (one
pod's flood must not starve the others). The clock is passed in so limits are
tested without sleeping.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from time import monotonic

DEFAULT_MAX_KEYS = 4096  # keys remembered; the idlest quarter is forgotten past this


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; starts full. Not thread-safe."""

    __slots__ = ("_burst", "_clock", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1 (got {rate}, {burst})")
        self._rate, self._burst, self._clock = float(rate), float(burst), clock
        self._tokens, self._last = float(burst), clock()

    def wait(self) -> float:
        """Take a token: 0.0 when one was there, else the seconds until one will be."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def take(self) -> bool:
        """Take a token if one is there."""
        return self.wait() == 0.0

    @property
    def last_used(self) -> float:
        return self._last


class KeyedLimiter:
    """One bucket per key (event type, caller), created full on first use; thread-safe.

    Counts what each key was refused, so drops are reported exactly, and forgets
    the idlest quarter of the keys past ``max_keys`` so that a stream of new
    keys (callers) cannot grow it without bound.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = monotonic,
                 max_keys: int = DEFAULT_MAX_KEYS) -> None:
        TokenBucket(rate, burst, clock)  # validates the settings once, at construction
        self._rate, self._burst, self._clock, self._max_keys = rate, burst, clock, max_keys
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self.refused: defaultdict[str, int] = defaultdict(int)

    def wait(self, key: str) -> float:
        """Take a token of ``key``: 0.0 when admitted, else the seconds until it could be."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, self._clock)
                if len(self._buckets) > self._max_keys:
                    self._forget_idlest()
            wait = bucket.wait()
            if wait:
                self.refused[key] += 1
            return wait

    def allow(self, key: str) -> bool:
        """Take a token of ``key`` if it has one."""
        return self.wait(key) == 0.0

    def _forget_idlest(self) -> None:
        by_age = sorted(self._buckets, key=lambda k: self._buckets[k].last_used)
        for stale in by_age[: len(by_age) // 4]:
            del self._buckets[stale]
