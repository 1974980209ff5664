"""The sweep over outstanding DNS queries: each attempt's timeout counted exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otel_netreceiver.dns.pending import DEFAULT_TIMEOUT_NS, LATE_GRACE_NS, Pending, sweep

S = 10**9


def test_an_attempt_times_out_once_across_many_sweeps_then_is_forgotten() -> None:
    entry = Pending(key=("ns", 40000, 7), netns=1, resolver="cluster_dns", last_sent_ns=0)
    first = sweep([entry], 4 * S, {1: 5 * S})
    assert not first.timeouts and not first.forget
    second = sweep([entry], 5 * S, {1: 5 * S}, first.counted)
    assert second.timeouts == {(1, "cluster_dns"): 1} and not second.forget
    third = sweep([entry], 9 * S, {1: 5 * S}, second.counted)
    assert not third.timeouts  # already counted
    gone = sweep([entry], 5 * S + LATE_GRACE_NS, {1: 5 * S}, third.counted)
    assert gone.forget == (("ns", 40000, 7),) and not gone.timeouts and not gone.counted


def test_a_retry_on_the_same_key_is_a_new_attempt() -> None:
    first = Pending(("ns", 40000, 7), 1, "amazon", last_sent_ns=0)
    counted = sweep([first], 2 * S, {1: 2 * S}).counted
    retry = Pending(("ns", 40000, 7), 1, "amazon", last_sent_ns=2 * S)  # glibc resends the id
    assert sweep([retry], 4 * S, {1: 2 * S}, counted).timeouts == {(1, "amazon"): 1}


def test_each_namespace_has_its_own_timeout_and_unknown_ones_the_libc_default() -> None:
    entries = [Pending("a", 1, "c", 0), Pending("b", 2, "c", 0)]
    result = sweep(entries, 3 * S, {1: 1 * S})
    assert result.timeouts == {(1, "c"): 1}
    assert sweep(entries, DEFAULT_TIMEOUT_NS, {1: 1 * S}).timeouts == {(1, "c"): 1, (2, "c"): 1}


def test_an_entry_answered_late_before_any_sweep_still_counts_its_timeout() -> None:
    late = Pending("k", 1, "node_local", last_sent_ns=0, answered_late=True)
    result = sweep([late], 5 * S + 1, {1: 5 * S})
    assert result.timeouts == {(1, "node_local"): 1} and result.forget == ("k",)


@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=20),
       st.integers(min_value=1, max_value=10))
def test_exactly_once_whatever_the_sweep_times(times: list[int], timeout_s: int) -> None:
    entry = Pending("k", 1, "r", last_sent_ns=0)
    counted: frozenset = frozenset()
    total = 0
    table = [entry]
    for t in sorted(times):
        result = sweep(table, t * S, {1: timeout_s * S}, counted)
        total += sum(result.timeouts.values())
        counted = result.counted
        table = [e for e in table if e.key not in result.forget]  # what the agent deletes
    assert total == (1 if max(times) >= timeout_s else 0)
