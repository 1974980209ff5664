"""A token bucket per caller: one pod's request flood cannot starve the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_BUCKETS = 4096  # callers remembered; the idlest are forgotten first


class RateLimiter:
    def __init__(self, rate: float, burst: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, last time)
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0.0 when the request may go ahead, else the seconds until it could."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self._rate
            if len(self._buckets) > MAX_BUCKETS:
                oldest = sorted(self._buckets, key=lambda k: self._buckets[k][1])
                for stale in oldest[: len(oldest) // 4]:
                    del self._buckets[stale]
        return wait
