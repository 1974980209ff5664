"""The dns probe's maps → per-pod points, and the sweep that counts timeouts.

Every cycle: write each live namespace's resolver timeout into the kernel (``timeouts``,
from the resolv.conf its first process sees), sweep ``pending`` (dns/pending.py: take
expired attempts atomically, count them, keep them in ``expired`` for late answers),
forget what is stale or belongs to a namespace that is gone, then read the counters and
the latency histogram. The conversion to points is a pure function (``dns_points``).
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.probes.dns.linklocal import LinkLocalReader
from otel_netreceiver.bpf.readers import NetnsLabels, definition, histogram
from otel_netreceiver.dns.message import Unparsed, rcode_class
from otel_netreceiver.dns.pending import Attempt, Outcome, due, forget, settle
from otel_netreceiver.dns.resolvconf import read_resolv_conf
from otel_netreceiver.model import Attributes, Point
from otel_netreceiver.netns.bpfkeys import DEAD, KeyJoin
from otel_netreceiver.netns.resolver import NetnsResolver

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps

# the C's kinds and codes (bpf/probes/dns/dns.c)
QUERY, RESPONSE, TRUNCATED, TIMEOUT, LATE, UNMATCHED, UNPARSED, RETRANSMIT = range(1, 9)
ROLES = ("client", "server")
CLASSES = ("other", "cluster_dns", "node_local", "amazon")
QTYPES = ("A", "AAAA", "other")
LATE_REASONS = ("after_timeout", "no_socket")
TRANSPORTS = ("udp", "tcp")
UNPARSED_REASONS = tuple(Unparsed)

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
    }
    if kind not in table:
        return None
    name, attributes = table[kind]
    return f"netreceiver.pod.dns.{name}", attributes


def dns_points(counts: Iterable[CountRow], latencies: Iterable[LatencyRow],
               swept: Mapping[tuple[int, int], int], labels: NetnsLabels) -> list[Point]:
    """Kernel rows plus the sweep's timeouts ((netns, class) → n) → catalogue points."""
    totals: defaultdict[tuple[str, Attributes], int] = defaultdict(int)
    for netns, kind, role, rclass, value, transport, n in counts:
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


def _attempt(value: Any, netns: int) -> Attempt:
    return Attempt(netns, int(value.rclass), int(value.sent), int(value.timeout))


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
        self._written: dict[int, int] = {}  # netns → timeout ns written to the kernel
        self._options: dict[tuple[int, int], int] = {}  # (inode, pid) → timeout ns

    def __call__(self, maps: ProbeMaps) -> list[Point]:
        self._write_timeouts(maps.table("timeouts"))
        now = time.monotonic_ns()  # bpf_ktime_get_ns is CLOCK_MONOTONIC
        self._sweep(maps.table("pending"), maps.table("expired"), maps.live, now)
        counts = [(k.netns, k.kind, k.role, k.rclass, k.value, k.transport, sum(v))
                  for k, v in maps.live_items("dns_counts")]
        latencies = [(k.netns, k.rclass, k.slot, sum(x.count for x in v),
                      sum(x.sum for x in v)) for k, v in maps.live_items("dns_latency")]
        for key in [k for k in self._swept if maps.live.status(k[0]) == DEAD]:
            del self._swept[key]
        return dns_points(counts, latencies, self._swept, maps.labels)

    def _write_timeouts(self, table: Any) -> None:
        """Each live namespace's resolver timeout, written when it changed; the entries of
        namespaces that are gone deleted (the map would fill with the dead)."""
        walk = self._resolver.current()
        if walk.cookies_complete:
            for cookie in [c for c in self._written if c not in walk.cookies]:
                del self._written[cookie]
                with contextlib.suppress(KeyError):
                    table.__delitem__(table.Key(cookie))
        inodes = {inode: cookie for cookie, inode in walk.cookies.items()}
        options: dict[tuple[int, int], int] = {}
        for inode, (ns, _identity) in walk.entries.items():
            cookie = inodes.get(inode)
            if cookie is None:
                continue
            known = self._options.get((inode, ns.pid))
            if known is None:
                parsed = read_resolv_conf(self._proc_root, ns.pid)
                known = int((parsed.timeout_s if parsed else 5.0) * 1e9)
            options[(inode, ns.pid)] = known
            if self._written.get(cookie) != known:
                table[table.Key(cookie)] = table.Leaf(known)
                self._written[cookie] = known
        self._options = options  # re-read when a namespace's first process changes

    def _sweep(self, pending: Any, expired: Any, live: KeyJoin, now: int) -> None:
        """Count expired attempts once (dns/pending.py) and forget what no answer can match."""
        from bcc import lib  # only where bcc loaded the probe

        entries = list(pending.items())
        gone = [k for k, _ in entries if live.status(k.netns) == DEAD]
        for key in gone:
            pending.__delitem__(key)
        for key in due([(k, _attempt(v, k.netns)) for k, v in entries if k not in gone], now):
            leaf = pending.Leaf()
            found = lib.bpf_lookup_and_delete(pending.map_fd, ctypes.byref(key),
                                              ctypes.byref(leaf)) == 0
            taken = _attempt(leaf, key.netns) if found else None
            outcome = settle(taken, now)
            if outcome is Outcome.TIMEOUT and taken is not None:
                self._swept[(key.netns, taken.resolver)] += 1
                expired[key] = leaf
            elif outcome is Outcome.PUT_BACK:
                pending[key] = leaf
        old = [(k, _attempt(v, k.netns)) for k, v in expired.items()]
        for key in forget(old, now) + [k for k, _ in old if live.status(k.netns) == DEAD]:
            expired.__delitem__(key)
