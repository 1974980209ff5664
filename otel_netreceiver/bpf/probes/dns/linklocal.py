"""The dns probe's link-local maps: routes written in, per-pod and per-interface points out.

Each cycle, before reading: write ``ll_routes`` (counting.c, link-local section), the host
interface each namespace's packets to each ENI-answered service address leave by
(netns/egress.py; a namespace is resolved when first seen and again every
``REFRESH_S``), the node's own route under namespace 0, and LL_HOST for the node's
namespace. Then read: ``ll_counts`` per pod (a hostNetwork pod by its socket's cgroup id,
k8s/cgroupids.py), ``ll_totals`` per interface, and ``ll_seconds``: the finished seconds
are taken out (lookup-and-delete) and the highest count per interface is the peak since the
previous collection (and at least over the last peak_window seconds: ``Peaks``). The
current second stays for the next collection, so no second is split between two peaks.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.probes.dns.spec import (
    ENI_SERVICES,
    SERVICE_CODES,
    service_codes,
    services,
)
from otel_netreceiver.bpf.readers import NetnsLabels, definition
from otel_netreceiver.k8s.cgroupids import CgroupPods
from otel_netreceiver.model import Attributes, Point, attrs
from otel_netreceiver.netns.egress import Address, RouteLookup, resolve_namespace, resolve_node
from otel_netreceiver.netns.identity import NetnsIdentity

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps
    from otel_netreceiver.netns.resolver import NetnsResolver, Walk

SERVICES = {code: str(service) for service, code in SERVICE_CODES.items()}
LL_HOST = 0xFFFFFFFF
REFRESH_S = 60.0  # a namespace's routes are asked again after this (an ENI attached later)
UNKNOWN = "unknown"

CountRow = tuple[int, int, int, int, int, int]  # netns, cgroup, ifindex, service, pkts, bytes
PodLabels = Callable[[int, int], Attributes]  # (netns, cgroup id) → the sender's attributes


def interface_name(ifindex: int) -> str:
    """The node's interface name (the agent's namespace is the node's), or unknown."""
    if ifindex <= 0:
        return UNKNOWN
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return UNKNOWN


def linklocal_points(counts: Iterable[CountRow], totals: Iterable[tuple[int, int, int]],
                     peaks: Mapping[int, int], labels: PodLabels,
                     name: Callable[[int], str] = interface_name) -> list[Point]:
    """Kernel rows → per-pod counters, per-interface counters and the per-second peak."""
    sums: defaultdict[tuple[str, Attributes], int] = defaultdict(int)
    for netns, cgroup, ifindex, service, packets, size in counts:
        eni = service <= ENI_SERVICES
        extra = {"linklocal.service": SERVICES.get(service, str(service)),
                 "linklocal.answered_by": "eni" if eni else "node",
                 "network.interface.name": name(ifindex) if eni else None}
        a = tuple(sorted((*labels(netns, cgroup), *attrs(extra))))
        sums[("netreceiver.pod.linklocal.packets", a)] += packets
        sums[("netreceiver.pod.linklocal.bytes", a)] += size
    for ifindex, service, n in totals:
        a = attrs({"network.interface.name": name(ifindex),
                   "linklocal.service": SERVICES.get(service, str(service))})
        sums[("netreceiver.linklocal.packets", a)] += n
    points = [Point(definition(metric), a, n) for (metric, a), n in sums.items()]
    peak = definition("netreceiver.linklocal.peak_packets_per_second")
    by_name: defaultdict[str, int] = defaultdict(int)
    for ifindex, n in peaks.items():
        by_name[name(ifindex)] = max(by_name[name(ifindex)], n)
    points += [Point(peak, attrs({"network.interface.name": k}), n) for k, n in by_name.items()]
    return points


def take_seconds(table: Any, now_second: int) -> dict[tuple[int, int], int]:
    """(interface, second) → packets of the finished seconds, taken out of the map
    atomically (a late increment lands in the taken entry or a new one, never counted
    twice). The current second stays for the next read, so no second is split."""
    from bcc import lib  # only where bcc loaded the probe

    taken = {}
    for key, _ in list(table.items()):
        if key.second >= now_second:
            continue
        leaf = table.Leaf()
        if lib.bpf_lookup_and_delete(table.map_fd, ctypes.byref(key), ctypes.byref(leaf)) == 0:
            taken[(int(key.ifindex), int(key.second))] = int(leaf.value)
    return taken


class Peaks:
    """The peak per interface: the highest finished second since the previous read, and
    at least over the last ``window`` seconds (collectors.ebpf.dns.peak_window). A read
    the node API triggers between two scheduled collections would otherwise take a burst's
    second out from under the next scheduled one, whose gauge is the one exported."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._recent: dict[tuple[int, int], int] = {}

    def __call__(self, taken: Mapping[tuple[int, int], int], now_second: int,
                 interfaces: Iterable[int]) -> dict[int, int]:
        """Interfaces with no packets get 0, so the gauge does not keep an old peak."""
        self._recent = {k: n for k, n in self._recent.items()
                        if k[1] >= now_second - self._window}
        peaks = dict.fromkeys(interfaces, 0)
        for (ifindex, _second), n in [*taken.items(), *self._recent.items()]:
            peaks[ifindex] = max(peaks.get(ifindex, 0), n)
        for (ifindex, second), n in taken.items():
            if self._window and second >= now_second - self._window:
                self._recent[(ifindex, second)] = max(n, self._recent.get((ifindex, second), 0))
        return peaks


def _words(address: Address) -> tuple[int, int, int, int]:
    """The address as counting.c keys it: 32-bit little-endian words of network order."""
    packed = address.packed + b"\0" * (16 - len(address.packed))
    return tuple(int.from_bytes(packed[i:i + 4], "little") for i in range(0, 16, 4))  # type: ignore[return-value]


class RouteWriter:
    """Keeps ``ll_routes`` in step with the live namespaces (cookie keyed)."""

    def __init__(self, eni: list[Address], every: list[Address],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._eni, self._every, self._clock = eni, every, clock
        self._lookup: RouteLookup | None = None
        self._written: dict[tuple[int, Address], int] = {}
        self._resolved_at: dict[int, float] = {}  # cookie → when its routes were asked

    def update(self, table: Any, walk: Walk, proc_root: str) -> None:
        if self._lookup is None:
            self._lookup = RouteLookup()
        now, want = self._clock(), dict(self._written)
        stale = [c for c in self._resolved_at if c not in walk.cookies]
        for cookie in stale:
            del self._resolved_at[cookie]
            want = {k: v for k, v in want.items() if k[0] != cookie}
        if now - self._resolved_at.get(0, -REFRESH_S) >= REFRESH_S:
            want = {k: v for k, v in want.items() if k[0] != 0}
            want.update({(0, e.address): e.ifindex for e in resolve_node(self._lookup, self._eni)})
            self._resolved_at[0] = now
        for cookie, inode in walk.cookies.items():
            if now - self._resolved_at.get(cookie, -REFRESH_S) < REFRESH_S:
                continue
            want = {k: v for k, v in want.items() if k[0] != cookie}
            want.update(self._resolve(walk, cookie, inode, proc_root))
            self._resolved_at[cookie] = now
        self._write(table, want)

    def _resolve(self, walk: Walk, cookie: int, inode: int,
                 proc_root: str) -> dict[tuple[int, Address], int]:
        from otel_netreceiver.netns.egress import namespace_addresses

        ns, identity = walk.entries[inode]
        if identity.kind == "host":
            return {(cookie, a): LL_HOST for a in self._every}
        assert self._lookup is not None
        own = namespace_addresses(proc_root, ns.pid)
        return {(cookie, e.address): e.ifindex
                for e in resolve_namespace(self._lookup, own, self._eni)}

    def _write(self, table: Any, want: dict[tuple[int, Address], int]) -> None:
        for key in [k for k in self._written if k not in want]:
            with contextlib.suppress(KeyError):
                table.__delitem__(self._key(table, *key))
        for key, ifindex in want.items():
            if self._written.get(key) != ifindex:
                table[self._key(table, *key)] = table.Leaf(ifindex)
        self._written = want

    @staticmethod
    def _key(table: Any, cookie: int, address: Address) -> Any:
        key = table.Key()
        key.netns = cookie
        for i, word in enumerate(_words(address)):
            key.addr[i] = word
        return key


def pod_labels(resolver: NetnsResolver, labels: NetnsLabels, host_inode: int | None,
               pods: Mapping[int, str]) -> PodLabels:
    """(netns, cgroup id) → attributes: a cgroup of a pod names that pod (hostNetwork: the
    node's namespace inode), otherwise the namespace's own attributes."""
    def of(netns: int, cgroup: int) -> Attributes:
        uid = pods.get(cgroup) if cgroup else None
        if uid is None or host_inode is None:
            return labels(netns)
        return NetnsIdentity("pod", uid, "", ()).attributes(host_inode, resolver.directory)
    return of


class LinkLocalReader:
    """The link-local part of the dns probe's reader (one per loaded probe)."""

    def __init__(self, config: Any) -> None:
        addresses = services(config.dns)
        codes = service_codes(addresses)
        every = sorted((a for a, c in codes.items() if c >> 4), key=str)
        eni = [a for a in every if codes[a] >> 4 <= ENI_SERVICES]
        self._routes = RouteWriter(eni, every)
        self._cgroups = CgroupPods(config.dns.cgroup_root)
        self._peaks = Peaks(int(config.dns.peak_window))

    def __call__(self, maps: ProbeMaps) -> list[Point]:
        resolver = maps.live.resolver
        walk = resolver.current()
        self._routes.update(maps.table("ll_routes"), walk, resolver.proc_root)
        rows = maps.live_items("ll_counts")
        gone = self._cgroups.gone({k.cgroup for k, _ in rows if k.cgroup})
        for key in [k for k, _ in rows if k.cgroup in gone]:  # a hostNetwork pod deleted
            with contextlib.suppress(KeyError):
                maps.table("ll_counts").__delitem__(key)
        counts = [(k.netns, k.cgroup, k.ifindex, k.service, sum(v.packets for v in vals),
                   sum(v.bytes for v in vals)) for k, vals in rows if k.cgroup not in gone]
        totals = [(k.ifindex, k.service, sum(v)) for k, v in maps.table("ll_totals").items()]
        now_second = time.monotonic_ns() // 1_000_000_000  # bpf_ktime_get_ns's clock
        peaks = self._peaks(take_seconds(maps.table("ll_seconds"), now_second), now_second,
                            {t[0] for t in totals})
        host = next((i for i, (_, ident) in walk.entries.items() if ident.kind == "host"), None)
        pods = self._cgroups.lookup(row[1] for row in counts)
        return linklocal_points(counts, totals, peaks,
                                pod_labels(resolver, maps.labels, host, pods))
