"""Queries waiting for an answer: which have timed out, each attempt counted exactly once.

The DNS program (bpf/probes/dns/counting.c) keeps one entry per outstanding client query in
a kernel hash (namespace, client port, transaction id, transport) holding when its last
attempt left and the namespace's resolver timeout (``options timeout:`` of the resolv.conf
its processes see). Answers that come in time delete their entry in the kernel and feed the
latency histogram. Nothing in the kernel fires when an answer does *not* come, so user
space sweeps the table every cycle: an attempt whose age passed its timeout is taken out
of the table atomically (BPF_MAP_LOOKUP_AND_DELETE_ELEM), counted as a timeout and put
back marked ``expired``, where a late answer still finds it. Whoever takes an outstanding
attempt out of the table counts its timeout: this sweep, or the kernel when a late answer
or a re-sent query (glibc resends the same id on the same socket) meets the entry
first. So each attempt's timeout is counted once, on expiry or at the first packet after
it (docs/background.md, "DNS timeouts and late answers").

The decisions are pure functions here so that exactly-once is testable without a kernel.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

DEFAULT_TIMEOUT_NS = 5 * 10**9  # glibc and musl: RES_TIMEOUT, resolv/resolv.h
LATE_GRACE_NS = 30 * 10**9  # how long after its timeout an attempt may still match a late answer


@dataclass(frozen=True, slots=True)
class Attempt:
    """One kernel entry's value: its namespace, resolver class, when it left, its timeout."""

    netns: int
    resolver: int
    sent_ns: int
    timeout_ns: int

    def expired(self, now_ns: int) -> bool:
        return now_ns - self.sent_ns >= self.timeout_ns

    def stale(self, now_ns: int) -> bool:
        """Past its timeout by more than LATE_GRACE_NS: no answer is waited for any more."""
        return now_ns - self.sent_ns >= self.timeout_ns + LATE_GRACE_NS


def due(entries: Iterable[tuple[Hashable, Attempt]], now_ns: int) -> list[Hashable]:
    """Keys of ``pending`` whose attempt expired: the sweep takes these out of the table."""
    return [key for key, attempt in entries if attempt.expired(now_ns)]


class Outcome(enum.Enum):
    TIMEOUT = "timeout"  # count it, keep it in ``expired`` for a late answer
    PUT_BACK = "put_back"  # the kernel re-sent it meanwhile: a new attempt, not expired
    GONE = "gone"  # the kernel took it first (answered or re-sent and counted there)


def settle(taken: Attempt | None, now_ns: int) -> Outcome:
    """What the sweep does with what lookup-and-delete returned for a due key."""
    if taken is None:
        return Outcome.GONE
    return Outcome.TIMEOUT if taken.expired(now_ns) else Outcome.PUT_BACK


def forget(entries: Iterable[tuple[Hashable, Attempt]], now_ns: int) -> list[Hashable]:
    """Keys of ``expired`` no late answer is waited for any more."""
    return [key for key, attempt in entries if attempt.stale(now_ns)]


def overflow(entries: Iterable[tuple[Hashable, Attempt]], room: int) -> list[Hashable]:
    """Keys of ``expired`` beyond ``room``, oldest first: outstanding and expired attempts
    share one kernel table, so expired ones must not fill it (a resolver outage would leave
    new queries untracked); the oldest go first, as an LRU of expired attempts evicted them."""
    ordered = sorted(entries, key=lambda entry: entry[1].sent_ns)
    return [key for key, _ in ordered[:max(0, len(ordered) - room)]]
