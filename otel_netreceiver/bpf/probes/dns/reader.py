"""The dns probe's maps → per-pod points, and the sweep that counts timeouts.

Every cycle: write each live namespace's resolver timeout into the kernel (``timeouts``,
from the resolv.conf its first process sees), sweep ``pending`` (dns/pending.py: take
expired attempts atomically, count them, keep them, marked expired, for late answers),
forget what is stale or belongs to a namespace that is gone, then read the counters and
the latency histogram. The conversion to points is a pure function (``dns_points``).
"""

from __future__ import annotations

import ctypes
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.probes.dns.linklocal import LinkLocalReader
from otel_netreceiver.bpf.probes.dns.sweep import put, sweep, take
from otel_netreceiver.bpf.probes.dns.timeouts import TimeoutWriter
from otel_netreceiver.bpf.readers import NetnsLabels, definition, histogram
from otel_netreceiver.dns.message import Unparsed, rcode_class
from otel_netreceiver.dns.pending import Attempt
from otel_netreceiver.model import Attributes, Point
from otel_netreceiver.netns.bpfkeys import DEAD, KeyJoin
from otel_netreceiver.netns.resolver import NetnsResolver

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps

# the C's kinds and codes (bpf/probes/dns/dns.c)
QUERY, RESPONSE, TRUNCATED, TIMEOUT, LATE, UNMATCHED, UNPARSED, RETRANSMIT = range(1, 9)
NDOTS, TCP_FALLBACK = 11, 12  # 9, 10: were the link-local counts, now in ll_counts
FALLBACK_RESULTS = ("ok", "failed")
ROLES = ("client", "server")
CLASSES = ("other", "cluster_dns", "node_local", "amazon")
QTYPES = ("A", "AAAA", "other")
LATE_REASONS = ("after_timeout", "no_socket")
TRANSPORTS = ("udp", "tcp")
UNPARSED_REASONS = tuple(Unparsed)

NDOTS_GAP_NS = 5 * 10**9  # counting.c's: a run whose last answer is older is over
CountRow = tuple[int, int, int, int, int, int, int]  # netns, kind, role, class, value, tr, n
LatencyRow = tuple[int, int, int, int, int]  # netns, class, slot, count, sum ns


def _name(names: tuple[str, ...] | Mapping[int, str], index: int) -> str:
    try:
        return str(names[index])
    except (IndexError, KeyError):
        return str(index)


def _count_point(kind: int, role: int, rclass: int, value: int,
                 transport: int) -> tuple[str, dict[str, str]] | None:
    """The metric and attributes of one counter row (the namespace's added by the caller)."""
    cls = {"dns.resolver.class": _name(CLASSES, rclass)}
    tr = {"network.transport": _name(TRANSPORTS, transport)}
    role_attr = {"dns.role": _name(ROLES, role)}
    table: dict[int, tuple[str, dict[str, str]]] = {
        QUERY: ("queries", {**role_attr, **cls, **tr,
                            "dns.question.type": _name(QTYPES, value)}),
        RESPONSE: ("responses", {**role_attr, **cls, **tr,
                                 "dns.response.code": rcode_class(value)}),
        TRUNCATED: ("truncated", {**role_attr, **cls, **tr}),
        TIMEOUT: ("timeouts", cls),
        LATE: ("late_answers", {**cls, "dns.late.reason": _name(LATE_REASONS, value)}),
        UNMATCHED: ("unmatched", cls),
        RETRANSMIT: ("retransmits", cls),
        UNPARSED: ("unparsed", {"dns.unparsed.reason": _name(UNPARSED_REASONS, value)}),
        NDOTS: ("ndots_expansions", cls),
        TCP_FALLBACK: ("tcp_fallbacks", {**cls, "dns.fallback.result":
                                         _name(FALLBACK_RESULTS, value)}),
    }
    if kind not in table:
        return None
    name, attributes = table[kind]
    return f"netreceiver.pod.dns.{name}", attributes


def dns_points(counts: Iterable[CountRow], latencies: Iterable[LatencyRow],
               swept: Mapping[tuple[int, int], int], labels: NetnsLabels,
               fallbacks_failed: Mapping[tuple[int, int], int] | None = None) -> list[Point]:
    """Kernel rows plus the sweeps' timeouts and failed TCP fallbacks ((netns, class) → n)
    → catalogue points."""
    totals: defaultdict[tuple[str, Attributes], int] = defaultdict(int)
    failed = [(netns, TCP_FALLBACK, 0, rclass, 1, 1, n)
              for (netns, rclass), n in (fallbacks_failed or {}).items()]
    for netns, kind, role, rclass, value, transport, n in [*counts, *failed]:
        found = _count_point(kind, role, rclass, value, transport)
        if found is not None:
            name, extra = found
            totals[(name, tuple(sorted((*labels(netns), *extra.items()))))] += n
    for (netns, rclass), n in swept.items():
        extra = {"dns.resolver.class": _name(CLASSES, rclass)}
        totals[("netreceiver.pod.dns.timeouts",
                tuple(sorted((*labels(netns), *extra.items()))))] += n
    points = [Point(definition(name), a, n) for (name, a), n in totals.items()]
    slots: defaultdict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    sums: defaultdict[tuple[int, int], int] = defaultdict(int)
    for netns, rclass, slot, count, total in latencies:
        slots[(netns, rclass)][slot] = slots[(netns, rclass)].get(slot, 0) + count
        sums[(netns, rclass)] += total
    latency = definition("netreceiver.pod.dns.latency")
    for (netns, rclass), buckets in slots.items():
        a = tuple(sorted((*labels(netns),
                          ("dns.resolver.class", _name(CLASSES, rclass)))))
        points.append(Point(latency, a, histogram(buckets, sums[(netns, rclass)])))
    return points


def _forget_runs(table: Any, live: KeyJoin, now: int) -> None:
    """ndots runs past their gap, or of a gone namespace: over. The kernel deletes one it
    meets; nothing evicts the others from its plain hash. Each is taken atomically and put
    back when the kernel renewed it in between (its ``last`` after ``now``)."""
    for key, value in list(table.items()):
        if live.status(key.netns) != DEAD and now - int(value.last) < NDOTS_GAP_NS:
            continue
        leaf = take(table, key)
        if leaf is not None and live.status(key.netns) != DEAD \
                and now - int(leaf.last) < NDOTS_GAP_NS:
            put(table, key, leaf)


def _attempt(key: Any, value: Any) -> Attempt:
    return Attempt(int(key.netns), int(value.rclass), int(value.sent), int(value.timeout))


def read(maps: ProbeMaps) -> list[Point]:
    """Probe.read: the reader's state lives on the loaded object (one per collector)."""
    resolver = maps.live.resolver
    if maps.bpf.state is None:
        maps.bpf.state = (DnsReader(resolver.proc_root, resolver), LinkLocalReader(maps.config))
    dns, linklocal = maps.bpf.state
    return dns(maps) + linklocal(maps)


class DnsReader:
    """Reads the dns probe's maps each cycle; keeps the sweep's timeout counts."""

    def __init__(self, proc_root: str, resolver: NetnsResolver) -> None:
        self._proc_root, self._resolver = proc_root, resolver
        self._swept: Counter[tuple[int, int]] = Counter()  # (netns, class) → timeouts
        self._failed: Counter[tuple[int, int]] = Counter()  # (netns, class) → TC fallbacks
        self.timeouts = TimeoutWriter(proc_root, resolver)

    def __call__(self, maps: ProbeMaps) -> list[Point]:
        self.timeouts.write(maps.table("timeouts"))
        now = time.monotonic_ns()  # bpf_ktime_get_ns is CLOCK_MONOTONIC
        self._sweep(maps.table("pending"), maps.live, now)
        self._sweep_fallbacks(maps.table("tc_wait"), maps.live, now)
        _forget_runs(maps.table("ndots_runs"), maps.live, now)
        counts = [(k.netns, k.kind, k.role, k.rclass, k.value, k.transport, sum(v))
                  for k, v in maps.live_items("dns_counts")]
        latencies = [(k.netns, k.rclass, k.slot, sum(x.count for x in v),
                      sum(x.sum for x in v)) for k, v in maps.live_items("dns_latency")]
        for swept in (self._swept, self._failed):
            for key in [k for k in swept if maps.live.status(k[0]) == DEAD]:
                del swept[key]
        return dns_points(counts, latencies, self._swept, maps.labels, self._failed)

    def _sweep_fallbacks(self, table: Any, live: KeyJoin, now: int) -> None:
        """Truncated answers with no TCP answer within the pod's timeout: failed, once
        (lookup-and-delete against the kernel's delete when the TCP answer comes)."""
        from bcc import lib  # only where bcc loaded the probe

        for key, value in list(table.items()):
            if live.status(key.netns) == DEAD:
                table.__delitem__(key)
                continue
            if now - int(value.at) < int(value.timeout):
                continue
            leaf = table.Leaf()
            if lib.bpf_lookup_and_delete(table.map_fd, ctypes.byref(key),
                                         ctypes.byref(leaf)) == 0:
                self._failed[(key.netns, int(leaf.rclass))] += 1

    def _sweep(self, pending: Any, live: KeyJoin, now: int) -> None:
        """Count expired attempts once (dns/pending.py, bpf/probes/dns/sweep.py: the same
        sweep as the event program's) and forget what no answer can match, or what belongs
        to a namespace that is gone."""
        entries = list(pending.items())
        for key in [k for k, _ in entries if live.status(k.netns) == DEAD]:
            pending.__delitem__(key)
        alive = [(k, v) for k, v in entries if live.status(k.netns) != DEAD]

        def counted(key: Any, leaf: Any) -> None:
            self._swept[(key.netns, int(leaf.rclass))] += 1
        sweep(pending, alive, now, _attempt, counted)
