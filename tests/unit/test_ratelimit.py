"""The agent's one token bucket: event records per type, node-API requests per caller."""

from __future__ import annotations

import pytest

from otel_netreceiver.ratelimit import KeyedLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_passes_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now += 0.25  # 2.5 tokens
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 100  # never more than the burst saved up
    assert sum(bucket.take() for _ in range(20)) == 5


def test_bucket_says_how_long_until_the_next_token() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=1, clock=clock)
    assert bucket.wait() == 0.0
    assert bucket.wait() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.wait() == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (10, 0)])
def test_settings_that_admit_nothing_are_refused_at_construction(rate: float,
                                                                 burst: float) -> None:
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        KeyedLimiter(rate, burst)


def test_each_key_has_its_own_bucket_and_refusals_are_counted_exactly() -> None:
    clock = Clock()
    limiter = KeyedLimiter(rate=1, burst=3, clock=clock)
    assert sum(limiter.allow("PACKETLOSS") for _ in range(10)) == 3
    assert limiter.refused["PACKETLOSS"] == 7
    assert limiter.allow("TCP_SEND_RST") and limiter.refused["TCP_SEND_RST"] == 0
    assert limiter.wait("PACKETLOSS") == pytest.approx(1.0)  # a caller is told when to retry
    clock.now += 1.0
    assert limiter.wait("PACKETLOSS") == 0.0


def test_a_stream_of_new_keys_forgets_the_idlest_not_the_busy() -> None:
    clock = Clock()
    limiter = KeyedLimiter(rate=1, burst=2, clock=clock, max_keys=8)
    limiter.allow("busy")
    limiter.allow("busy")  # busy's bucket is now empty
    for n in range(40):
        clock.now += 0.001
        limiter.allow(f"caller-{n}")
        limiter.wait("busy") if n % 2 else None  # busy keeps being used
    assert len(limiter._buckets) <= 8
    assert "busy" in limiter._buckets and limiter.refused["busy"] == 20  # kept, still empty
