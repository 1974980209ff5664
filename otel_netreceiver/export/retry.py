"""When to retry an OTLP export and how long to wait, as the OTLP specification says.

The specification ("OTLP Specification", Failures and Throttling) makes HTTP 429,
502, 503 and 504 retryable, and gives a table of gRPC codes: CANCELLED,
DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are retryable;
RESOURCE_EXHAUSTED only when the server says recovery is possible, which it does
by sending ``google.rpc.RetryInfo``. A server's delay (HTTP ``Retry-After`` in
seconds or as an HTTP-date, gRPC ``RetryInfo.retry_delay``) replaces our backoff;
otherwise the wait is exponential backoff with full jitter, so the agents of a
cluster do not retry in lockstep after a collector restart. Every wait is on a
``threading.Event``, so shutdown never sits out a backoff, and nothing runs past
the export's deadline: a retry that would start after it is not attempted.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
RETRYABLE_GRPC = frozenset({"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE",
                            "UNAVAILABLE", "DATA_LOSS"})
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
MAX_ATTEMPTS = 6  # as the OpenTelemetry SDK's exporters: a zero server delay cannot spin


class RetryableError(Exception):
    """A failure worth another try; ``delay`` is the server's wait, if it gave one."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(Exception):
    """A failure another try cannot fix (bad request, TLS verification, shutdown)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to try again, and after how long the server asked (None: our backoff)."""

    retry: bool
    delay: float | None = None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110: seconds or an HTTP-date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None  # unreadable: our own backoff, as if absent
    if when.tzinfo is None:
        return None  # RFC 9110 dates are GMT; a zoneless one is not an HTTP-date
    return max(when.timestamp() - now, 0.0)


def http_decision(status: int, headers: Mapping[str, str], now: float) -> Decision:
    """The decision for an HTTP answer that was not a success."""
    if status not in RETRYABLE_HTTP:
        return Decision(False)
    retry_after = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return Decision(True, parse_retry_after(retry_after, now))


def retry_info_delay(trailing: Sequence[tuple[str, str | bytes]]) -> float | None:
    """``RetryInfo.retry_delay`` in seconds from gRPC trailing metadata, if sent."""
    from google.rpc.error_details_pb2 import RetryInfo

    for key, value in trailing or ():
        if key == RETRY_INFO_KEY and isinstance(value, bytes):
            info = RetryInfo.FromString(value)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def grpc_decision(code: str, trailing: Sequence[tuple[str, str | bytes]]) -> Decision:
    """The decision for a gRPC status code name and the call's trailing metadata."""
    delay = retry_info_delay(trailing)
    if code in RETRYABLE_GRPC:
        return Decision(True, delay)
    if code == "RESOURCE_EXHAUSTED" and delay is not None:
        return Decision(True, delay)
    return Decision(False)


def full_jitter(attempt: int, rng: random.Random, base: float = 0.5, cap: float = 8.0) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, base * 2.0 ** attempt))


@dataclass
class Retrier:
    """Runs one export with retries inside a deadline; ``stop`` interrupts any wait."""

    stop: threading.Event
    rng: random.Random
    clock: Callable[[], float] = time.monotonic
    max_attempts: int = MAX_ATTEMPTS

    def run(self, send: Callable[[float], None], deadline: float, attempt_timeout: float,
            ) -> int:
        """Call ``send(timeout)`` until it succeeds; return the attempts it took.

        Raises the last RetryableError when the deadline or the attempt budget is
        spent, and PermanentError when ``stop`` is set while waiting.
        """
        end = self.clock() + deadline
        for attempt in range(self.max_attempts):
            remaining = end - self.clock()
            try:
                send(max(min(attempt_timeout, remaining), 0.05))
                return attempt + 1
            except RetryableError as exc:
                wait = exc.delay if exc.delay is not None else full_jitter(attempt, self.rng)
                if attempt + 1 == self.max_attempts or self.clock() + wait >= end:
                    raise
                if self.stop.wait(wait):
                    raise PermanentError(f"{exc} (shutting down: not retried)") from exc
        raise AssertionError("unreachable: the last attempt returns or raises")
