"""The sweep over a table of outstanding and expired attempts (bpf/probes/dns/sweep.py),
shared by the counting reader and the event sweep, against a dict standing in for the
kernel hash: each attempt handed over once, put back expired, the stale and the oldest
beyond half the table forgotten, and a re-send between read and put back kept."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from otel_netreceiver.bpf.probes.dns import sweep as table_sweep
from otel_netreceiver.dns.pending import LATE_GRACE_NS, Attempt

S = 10**9


class FakeTable(dict[str, SimpleNamespace]):
    """Keys → leaves; take and put as the kernel's lookup-and-delete and BPF_NOEXIST."""

    def __init__(self, max_entries: int) -> None:
        super().__init__()
        self.max_entries = max_entries


def _leaf(sent: int, expired: int = 0, timeout: int = 5 * S) -> SimpleNamespace:
    return SimpleNamespace(sent=sent, timeout=timeout, expired=expired)


def _attempt(key: Any, leaf: Any) -> Attempt:
    return Attempt(1, 0, leaf.sent, leaf.timeout)


@pytest.fixture(autouse=True)
def _dict_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_sweep, "take", lambda table, key: table.pop(key, None))
    monkeypatch.setattr(table_sweep, "put", lambda table, key, leaf: table.setdefault(key, leaf))


def _run(table: FakeTable, now: int, entries: list[tuple[str, Any]] | None = None) -> list[str]:
    handed: list[str] = []
    table_sweep.sweep(table, entries if entries is not None else list(table.items()), now,
                      _attempt, lambda key, leaf: handed.append(key))
    return handed


def test_an_expired_attempt_is_handed_over_once_and_kept_for_a_late_answer() -> None:
    table = FakeTable(8)
    table.update(due=_leaf(0), fresh=_leaf(4 * S))
    assert _run(table, 5 * S) == ["due"]
    assert table["due"].expired == 1 and table["fresh"].expired == 0
    assert _run(table, 6 * S) == []  # expired: waits for a late answer only
    assert _run(table, 5 * S + LATE_GRACE_NS) == ["fresh"] and "due" not in table


def test_an_attempt_the_kernel_took_first_is_not_handed_over() -> None:
    table = FakeTable(8)
    seen = [("answered", _leaf(0))]  # read by the sweep, then answered before its take
    assert _run(table, 9 * S, seen) == [] and table == {}


def test_a_resend_between_read_and_put_back_keeps_its_new_attempt() -> None:
    table = FakeTable(8)
    table["k"] = _leaf(8 * S)  # the client re-sent the id after the sweep read it
    assert _run(table, 9 * S, [("k", _leaf(0))]) == []
    assert table["k"].sent == 8 * S and table["k"].expired == 0


def test_expired_attempts_beyond_half_the_table_go_oldest_first() -> None:
    table = FakeTable(4)
    table.update(a=_leaf(1 * S, 1), b=_leaf(2 * S, 1), c=_leaf(3 * S, 1))
    assert _run(table, 6 * S) == []
    assert sorted(table) == ["b", "c"]
