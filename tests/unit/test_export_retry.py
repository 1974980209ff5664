"""Retry decisions and waits of export/retry.py, against the OTLP specification's rules."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from hypothesis import given
from hypothesis import strategies as st

from otel_netreceiver.export.retry import (
    MAX_ATTEMPTS,
    RETRY_INFO_KEY,
    Decision,
    PermanentError,
    Retrier,
    RetryableError,
    full_jitter,
    grpc_decision,
    http_decision,
    parse_retry_after,
)

NOW = 1_700_000_000.0


def _retry_info(seconds: float) -> list[tuple[str, bytes]]:
    info = RetryInfo(retry_delay=Duration(seconds=int(seconds), nanos=int(seconds % 1 * 1e9)))
    return [("other-bin", b"x"), (RETRY_INFO_KEY, info.SerializeToString())]


@pytest.mark.parametrize(("value", "expected"), [
    ("7", 7.0),
    (" 0 ", 0.0),
    (format_datetime(datetime.fromtimestamp(NOW + 120, UTC), usegmt=True), 120.0),
    (format_datetime(datetime.fromtimestamp(NOW - 120, UTC), usegmt=True), 0.0),
    ("soon", None),
    ("-3", None),
    ("", None),
    (None, None),
])
def test_retry_after_seconds_and_http_dates(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(("status", "headers", "decision"), [
    (429, {"Retry-After": "7"}, Decision(True, 7.0)),
    (429, {}, Decision(True, None)),
    (502, {}, Decision(True, None)),
    (503, {"retry-after": "2"}, Decision(True, 2.0)),
    (504, {}, Decision(True, None)),
    (500, {"Retry-After": "2"}, Decision(False)),
    (400, {}, Decision(False)),
    (401, {}, Decision(False)),
    (413, {}, Decision(False)),
])
def test_http_codes(status: int, headers: dict[str, str], decision: Decision) -> None:
    assert http_decision(status, headers, NOW) == decision


@pytest.mark.parametrize("code", ["CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE",
                                  "UNAVAILABLE", "DATA_LOSS"])
def test_grpc_retryable_codes_with_and_without_retry_info(code: str) -> None:
    assert grpc_decision(code, []) == Decision(True, None)
    assert grpc_decision(code, _retry_info(2.5)) == Decision(True, 2.5)


def test_resource_exhausted_is_retried_only_when_the_server_says_it_can_recover() -> None:
    assert grpc_decision("RESOURCE_EXHAUSTED", []) == Decision(False)
    assert grpc_decision("RESOURCE_EXHAUSTED", _retry_info(1.25)) == Decision(True, 1.25)


@pytest.mark.parametrize("code", ["UNKNOWN", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS",
                                  "PERMISSION_DENIED", "UNAUTHENTICATED", "FAILED_PRECONDITION",
                                  "UNIMPLEMENTED", "INTERNAL"])
def test_grpc_permanent_codes(code: str) -> None:
    assert grpc_decision(code, _retry_info(1.0)) == Decision(False)


@given(st.integers(0, 20), st.integers(0, 2**32))
def test_full_jitter_stays_within_the_capped_exponential(attempt: int, seed: int) -> None:
    wait = full_jitter(attempt, random.Random(seed), base=0.5, cap=8.0)
    assert 0.0 <= wait <= min(8.0, 0.5 * 2 ** attempt)


def test_full_jitter_spreads_the_waits() -> None:
    rng = random.Random(1)
    waits = [full_jitter(3, rng) for _ in range(200)]
    assert min(waits) < 1.0 and max(waits) > 3.0  # of [0, 4]: not lockstep


class Script:
    """A send() that fails as told, then succeeds; records the timeouts it was given."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        if self.failures:
            raise self.failures.pop(0)


def _retrier(stop: threading.Event | None = None) -> Retrier:
    return Retrier(stop or threading.Event(), random.Random(0))


def test_server_delays_are_followed_until_success() -> None:
    send = Script(RetryableError("429", 0.0), RetryableError("503", 0.0))
    assert _retrier().run(send, deadline=30.0, attempt_timeout=4.0) == 3
    assert all(t <= 4.0 for t in send.timeouts)  # each request bounded by its own timeout


def test_a_server_delay_past_the_deadline_is_not_waited_for() -> None:
    send = Script(RetryableError("429 Retry-After: 3600", 3600.0))
    with pytest.raises(RetryableError, match="3600"):
        _retrier().run(send, deadline=30.0, attempt_timeout=10.0)
    assert len(send.timeouts) == 1


def test_attempts_are_bounded_even_when_the_server_says_retry_now() -> None:
    send = Script(*[RetryableError("503", 0.0) for _ in range(MAX_ATTEMPTS + 3)])
    with pytest.raises(RetryableError):
        _retrier().run(send, deadline=30.0, attempt_timeout=10.0)
    assert len(send.timeouts) == MAX_ATTEMPTS


def test_permanent_errors_are_not_retried() -> None:
    send = Script(PermanentError("HTTP 400"))
    with pytest.raises(PermanentError):
        _retrier().run(send, deadline=30.0, attempt_timeout=10.0)
    assert len(send.timeouts) == 1


def test_shutdown_interrupts_the_wait() -> None:
    stop = threading.Event()
    stop.set()  # shutdown already asked: a 20 s server delay must not be sat out
    send = Script(RetryableError("503", 20.0))
    with pytest.raises(PermanentError, match="shutting down"):
        _retrier(stop).run(send, deadline=60.0, attempt_timeout=10.0)
    assert len(send.timeouts) == 1
