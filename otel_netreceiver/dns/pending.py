"""Queries waiting for an answer: when one has timed out, counted once, and when to forget it.

The DNS program keeps one entry per outstanding query in a kernel LRU hash
(network namespace, client port, transaction id). Answers that come in time
delete their entry in the kernel and feed the latency histogram. Nothing in the
kernel fires when an answer does *not* come, so user space sweeps the table:
an attempt whose age passes the namespace's resolver timeout (``options
timeout:`` of the resolv.conf its processes see) is a timeout, counted exactly
once however many sweeps see it. The kernel does not delete an entry answered
late; it marks it, so a late answer is always preceded by its timeout here and
the two counts stay consistent (docs/background.md, "DNS timeouts and late
answers"). The sweep is a pure function so that exactly-once is testable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

DEFAULT_TIMEOUT_NS = 5 * 10**9  # glibc and musl: RES_TIMEOUT, resolv/resolv.h
LATE_GRACE_NS = 30 * 10**9  # how long after its timeout an entry may still match a late answer


@dataclass(frozen=True, slots=True)
class Pending:
    """One kernel entry: key (opaque here), its namespace, when its last attempt left."""

    key: Hashable
    netns: int
    resolver: Hashable  # the resolver class or address the query went to
    last_sent_ns: int
    answered_late: bool = False


@dataclass(frozen=True, slots=True)
class Sweep:
    timeouts: Counter  # (netns, resolver) -> attempts that timed out since the last sweep
    forget: tuple[Hashable, ...]  # keys to delete from the kernel table
    counted: frozenset[tuple[Hashable, int]]  # (key, last_sent_ns) already counted, carried


def sweep(entries: Iterable[Pending], now_ns: int, timeouts_ns: Mapping[int, int],
          counted: frozenset[tuple[Hashable, int]] = frozenset()) -> Sweep:
    """Timeouts that expired since the last sweep, and entries no answer can match any more.

    ``counted`` is the previous sweep's; it only keeps attempts still in the table,
    so its size follows the table's, never the history's.
    """
    timeouts: Counter = Counter()
    forget: list[Hashable] = []
    still_counted: set[tuple[Hashable, int]] = set()
    for entry in entries:
        timeout = timeouts_ns.get(entry.netns, DEFAULT_TIMEOUT_NS)
        age = now_ns - entry.last_sent_ns
        attempt = (entry.key, entry.last_sent_ns)
        if age < timeout and not entry.answered_late:
            continue
        if attempt not in counted:
            timeouts[(entry.netns, entry.resolver)] += 1
        if entry.answered_late or age >= timeout + LATE_GRACE_NS:
            forget.append(entry.key)
        else:
            still_counted.add(attempt)
    return Sweep(timeouts, tuple(forget), frozenset(still_counted))
