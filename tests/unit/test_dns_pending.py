"""The sweep over outstanding DNS queries: each attempt's timeout counted exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otel_netreceiver.dns.pending import (
    LATE_GRACE_NS,
    Attempt,
    Outcome,
    due,
    forget,
    overflow,
    settle,
)

S = 10**9


def test_an_attempt_is_due_from_its_timeout_on_and_stale_after_the_grace() -> None:
    attempt = Attempt(netns=1, resolver=1, sent_ns=0, timeout_ns=5 * S)
    assert due([("k", attempt)], 5 * S - 1) == []
    assert due([("k", attempt)], 5 * S) == ["k"]
    assert forget([("k", attempt)], 5 * S + LATE_GRACE_NS - 1) == []
    assert forget([("k", attempt)], 5 * S + LATE_GRACE_NS) == ["k"]


def test_each_entry_carries_its_own_namespace_timeout() -> None:
    short, long = Attempt(1, 0, 0, 1 * S), Attempt(2, 0, 0, 5 * S)
    assert due([("a", short), ("b", long)], 2 * S) == ["a"]


def test_expired_attempts_beyond_their_room_go_oldest_first() -> None:
    kept = [(f"k{sent}", Attempt(1, 0, sent * S, 5 * S)) for sent in (3, 1, 4, 2)]
    assert overflow(kept, 4) == []
    assert overflow(kept, 2) == ["k1", "k2"]
    assert overflow(kept, 0) == ["k1", "k2", "k3", "k4"]
    assert overflow(kept, -3) == ["k1", "k2", "k3", "k4"]  # the new ones took all the room


def test_what_lookup_and_delete_returned_decides() -> None:
    assert settle(None, 9 * S) is Outcome.GONE  # answered or re-sent: the kernel counted it
    assert settle(Attempt(1, 0, 0, 5 * S), 9 * S) is Outcome.TIMEOUT
    # the client re-sent the id between the sweep's read and its take: a fresh attempt
    assert settle(Attempt(1, 0, 8 * S, 5 * S), 9 * S) is Outcome.PUT_BACK


@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=20),
       st.integers(min_value=1, max_value=10))
def test_exactly_once_whatever_the_sweep_times(times: list[int], timeout_s: int) -> None:
    """One unanswered attempt, swept at arbitrary moments: one timeout once it expired."""
    table = {"k": Attempt(1, 0, 0, timeout_s * S)}
    timeouts = 0
    for now in sorted(t * S for t in times):
        for key in due(list(table.items()), now):
            outcome = settle(table.pop(key, None), now)
            timeouts += outcome is Outcome.TIMEOUT
    assert timeouts == (1 if max(times) >= timeout_s else 0)
