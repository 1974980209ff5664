"""The drop counts as exported: the per-CPU hash plus each CPU's last-key slot, never down.

counting.c keeps, per CPU, the last (location, namespace, reason) key and its pending
count, and moves that count into the hash only when the CPU's next drop has another key.
A count is therefore in the slot or in the hash, and moves between them while user space
reads. Read naively (hash, then slots), a flush landing between the two reads is in
neither (the total dips); read the other way round, or with the slot's stores seen out of
order, it is in both (an overcount that a cumulative series could never take back). So:

- the slots are read before and after the hash; a CPU's slot counts only if its sequence
  count is even (not being changed) and the same in both reads: no flush ran on that CPU
  while the hash was read, so its pending count is not in the hash, and its key and count
  are whole (not half-written). A sequence count alone is not enough with plain stores:
  BPF has no store barrier, so on arm64 another CPU may see the slot's new key before the
  count that says it is changing; counting.c increments it with atomic fetch-adds, which
  the JITs emit fully ordered. The reader's three reads are successive bpf() syscalls.
- a CPU whose slot changed is left out of this read: its pending count is missed (never
  counted twice), so a total can read lower than the one exported last time. Each total
  is clamped to the largest exported so far, so a cumulative series never goes down; at
  the next read without a flush in flight it is exact again (after traffic stops, always).
- a slot holding a dead namespace's key is skipped like the hash's dead entries (which
  the reader deletes): the series ends, and when the slot is flushed the entry it makes
  is deleted on the next read; clamps of keys gone with their namespace are forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from otel_netreceiver.netns.bpfkeys import DEAD, LIVE

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps

Key = tuple[int, int, int]  # (location, netns, reason)
FIELDS = ("location", "netns", "reason")
CLAMP = "packetloss.exported"  # ProbeMaps.memo: key → largest total exported


def stable_slots(before: list[Any], after: list[Any]) -> dict[Key, int]:
    """Pending counts of the slots unchanged across the hash read (see the docstring)."""
    out: dict[Key, int] = {}
    for first, second in zip(before, after, strict=True):
        if first.seq % 2 or first.seq != second.seq or not first.pending:
            continue
        key = (first.key.location, first.key.netns, first.key.reason)
        out[key] = out.get(key, 0) + first.pending
    return out


def clamp(totals: dict[Key, int], exported: dict[Key, int],
          status: Callable[[int], str]) -> dict[Key, int]:
    """Each total at least the largest exported before; ``exported`` updated in place.
    A remembered key missing now (its only count in a slot left out of this read) keeps its
    last total while its namespace lives; a dead namespace's keys are forgotten."""
    for key, value in totals.items():
        totals[key] = exported[key] = max(value, exported.get(key, 0))
    for key in [k for k in exported if k not in totals]:
        state = status(key[1])
        if state == DEAD:
            del exported[key]
        elif state == LIVE:
            totals[key] = exported[key]
    return totals


def drop_totals(maps: ProbeMaps) -> dict[Key, int]:
    """(location, netns, reason) → drops counted, of the live namespaces."""
    before = maps.per_cpu("drop_last")
    rows = maps.netns_items("drops", FIELDS)
    after = maps.per_cpu("drop_last")
    totals: dict[Key, int] = {}
    for location, netns, reason, count in rows:
        totals[(location, netns, reason)] = totals.get((location, netns, reason), 0) + count
    for key, pending in stable_slots(before, after).items():
        if maps.live.status(key[1]) == LIVE:  # dead: skipped; unsure: decided later
            totals[key] = totals.get(key, 0) + pending
    exported = maps.memo.setdefault(CLAMP, {})
    return clamp(totals, exported, maps.live.status)
