"""The sweep of a kernel table of outstanding and expired DNS attempts, shared by the
counting program's ``pending`` (counting.c, reader.py) and the event program's
``ev_pending`` (events.c, events.py).

Both tables have the same shape: a plain preallocated hash (an LRU insert takes the common
LRU's lock and list, BENCHMARKS.md "The dns probe: cost per DNS packet"), twice the
outstanding queries it is sized for, one entry per (namespace, client port, id,
transport) whose value has ``sent``, ``timeout``, ``attempts`` and an ``expired`` flag.
Outstanding and expired attempts share it, so a query touches one bucket. The decisions are
dns/pending.py's pure functions; this module is the part that touches the map.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from typing import Any

from otel_netreceiver.dns.pending import Attempt, Outcome, due, forget, overflow, settle

BPF_NOEXIST = 1  # include/uapi/linux/bpf.h
AttemptOf = Callable[[Any, Any], Attempt]  # (key, leaf) → the attempt it holds


def take(table: Any, key: Any) -> Any:
    """The entry, taken out atomically (BPF_MAP_LOOKUP_AND_DELETE_ELEM), or None when the
    kernel took it first."""
    from bcc import lib  # only where bcc loaded the probe

    leaf = table.Leaf()
    if lib.bpf_lookup_and_delete(table.map_fd, ctypes.byref(key), ctypes.byref(leaf)) != 0:
        return None
    return leaf


def put(table: Any, key: Any, leaf: Any) -> None:
    """Put an entry back unless the kernel made a new one meanwhile (BPF_NOEXIST: the client
    re-sent the id in between; its new attempt is kept). Dropped when the table is full (a
    plain hash, not an LRU: a burst of outstanding queries filled it; the kernel counts its
    own failed inserts lost): a late answer to it is then unmatched."""
    from bcc import lib  # only where bcc loaded the probe

    lib.bpf_update_elem(table.map_fd, ctypes.byref(key), ctypes.byref(leaf), BPF_NOEXIST)


def sweep(table: Any, entries: Sequence[tuple[Any, Any]], now: int, attempt_of: AttemptOf,
          on_timeout: Callable[[Any, Any], None]) -> None:
    """Each outstanding attempt of ``entries`` (the table's items, live ones) past its
    timeout taken atomically (the kernel's answer or re-send may take it first), handed to
    ``on_timeout(key, leaf)`` once, and put back expired. Expired ones are forgotten past
    the grace, and the oldest beyond half the table (as the separate LRU of expired
    attempts evicted them): a resolver outage must not fill the table and leave new
    queries untracked. Each is taken and dropped, or put back when a re-send made it
    outstanding meanwhile."""
    moved = 0
    for key in due([(k, attempt_of(k, v)) for k, v in entries if not v.expired], now):
        leaf = take(table, key)
        taken = attempt_of(key, leaf) if leaf is not None and not leaf.expired else None
        if settle(taken, now) is Outcome.TIMEOUT and leaf is not None:
            on_timeout(key, leaf)
            leaf.expired = 1
            moved += 1
            put(table, key, leaf)
        elif leaf is not None:  # PUT_BACK, or an answer left it expired meanwhile
            put(table, key, leaf)
    kept = [(k, attempt_of(k, v)) for k, v in entries if v.expired]
    room = table.max_entries // 2 - moved  # the ones moved now are the newest
    for key in {*forget(kept, now), *overflow(kept, room)}:
        leaf = take(table, key)
        if leaf is not None and not leaf.expired:
            put(table, key, leaf)  # a re-send made it outstanding meanwhile
