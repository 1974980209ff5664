"""Kernel map contents → catalogue points (pure: map items in, points out).

Keys carry a namespace inode; ``NetnsLabels`` turns it into pod attributes (0:
the kernel could not tell, netns.kind=unknown). Histograms arrive as log2 slots
of nanoseconds (bpf_log2l: slot s holds [2^(s-1), 2^s)) and leave as OTLP
explicit-bucket histograms in seconds with bounds 2^s ns.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from otel_netreceiver.catalogue import metric
from otel_netreceiver.kernel_abi import AF_INET, SOFTIRQ_VECTOR_NAMES, tcp_state_name
from otel_netreceiver.model import Attributes, HistogramValue, Point, attrs

FIRST_SLOT, LAST_SLOT = 10, 34  # 1.024 µs .. 17.2 s; faster events fold into the first bucket
BOUNDS = tuple(2**s / 1e9 for s in range(FIRST_SLOT, LAST_SLOT + 1))

NetnsLabels = Callable[[int], Attributes]


def _with(base: Attributes, **extra: str) -> Attributes:
    return tuple(sorted((*base, *extra.items())))


def histogram(slots: Mapping[int, int], sum_ns: int, sample: int = 1) -> HistogramValue:
    """Log2 slots → OTLP buckets; ``sample``: the kernel timed one event in this many, so
    counts and sum are multiplied by it (unbiased estimates: the choice is random)."""
    if sample < 1:
        raise ValueError(f"sample must be >= 1 (one event in sample is timed), got {sample}")
    counts = [0] * (len(BOUNDS) + 1)
    for slot, count in slots.items():
        index = min(max(slot - FIRST_SLOT, 0), len(BOUNDS))
        counts[index] += count * sample
    return HistogramValue(BOUNDS, tuple(counts), sum_ns * sample / 1e9, sum(counts))


def drop_points(items: Iterable[tuple[int, int, int]], reasons: Mapping[int, str],
                labels: NetnsLabels) -> list[Point]:
    """(netns, reason, count) → per-pod drops by reason name."""
    totals: defaultdict[tuple[int, str], int] = defaultdict(int)
    for netns, reason, count in items:
        totals[(netns, reasons.get(reason, str(reason)))] += count
    definition = metric("netreceiver.pod.packet.drops")
    return [Point(definition, _with(labels(netns), **{"drop.reason": reason}), count)
            for (netns, reason), count in totals.items()]


def site_points(items: Iterable[tuple[int, int, int]], reasons: Mapping[int, str],
                symbol: Callable[[int], str]) -> list[Point]:
    """(location, reason, count) → node-wide drops by reason and kernel function."""
    totals: defaultdict[tuple[str, str], int] = defaultdict(int)
    for location, reason, count in items:
        totals[(reasons.get(reason, str(reason)), symbol(location))] += count
    definition = metric("netreceiver.packet.drop_sites")
    return [Point(definition, attrs({"drop.reason": r, "drop.location": loc}), count)
            for (r, loc), count in totals.items()]


def reset_points(items: Iterable[tuple[int, int, int, int, int]], reasons: Mapping[int, str],
                 labels: NetnsLabels) -> list[Point]:
    """(netns, direction, state, reason, count) → per-pod resets."""
    definition = metric("netreceiver.pod.tcp.resets")
    totals: defaultdict[Attributes, int] = defaultdict(int)
    for netns, direction, state, reason, count in items:
        reason_name = ("none" if reason == 0xFFFFFFFF else "unknown" if reason == 0xFFFFFFFE
                       else reasons.get(reason, str(reason)))
        a = _with(labels(netns), **{"tcp.reset.direction": "sent" if direction == 0
                                    else "received",
                                    "tcp.state": tcp_state_name(state),
                                    "tcp.reset.reason": reason_name.lower()})
        totals[a] += count
    return [Point(definition, a, count) for a, count in totals.items()]


def retrans_points(items: Iterable[tuple[int, int, int]], labels: NetnsLabels) -> list[Point]:
    definition = metric("netreceiver.pod.tcp.retransmits")
    totals: defaultdict[Attributes, int] = defaultdict(int)
    for netns, state, count in items:
        totals[_with(labels(netns), **{"tcp.state": tcp_state_name(state)})] += count
    return [Point(definition, a, count) for a, count in totals.items()]


def peer_address(family: int, raw: bytes | Sequence[int]) -> str:
    """The remote address of a retransmission key (AF_INET: the first 4 bytes)."""
    data = bytes(raw)
    if family == AF_INET:
        return str(ipaddress.IPv4Address(data[:4]))
    address = ipaddress.IPv6Address(data[:16])
    return str(address.ipv4_mapped or address)


def retrans_peer_points(items: Iterable[tuple[int, int, int, Sequence[int], int]],
                        labels: NetnsLabels) -> list[Point]:
    """(netns, family, dport, daddr, count) → per-pod retransmissions per remote endpoint."""
    definition = metric("netreceiver.pod.tcp.retransmits.by_peer")
    totals: defaultdict[Attributes, int] = defaultdict(int)
    for netns, family, dport, daddr, count in items:
        peer = {"network.peer.address": peer_address(family, daddr),
                "network.peer.port": str(dport)}
        totals[_with(labels(netns), **peer)] += count
    return [Point(definition, a, count) for a, count in totals.items()]


def softirq_points(phases: Mapping[str, tuple[Mapping[int, Mapping[int, int]],
                                              Mapping[int, int]]],
                   sample: int = 1) -> list[Point]:
    """phase → ({vector: {slot: count}}, {vector: sum ns}) → histograms per vector and phase.

    ``sample``: collectors.ebpf.timing_sample, the kernel timed one run in this many."""
    definition = metric("netreceiver.softirq.latency")
    points = []
    for phase, (by_vector, sums) in phases.items():
        for vector, name in SOFTIRQ_VECTOR_NAMES.items():
            points.append(Point(definition, attrs({"softirq.vector": name,
                                                   "softirq.phase": phase}),
                                histogram(by_vector.get(vector, {}), sums.get(vector, 0),
                                          sample)))
    return points


def txlat_points(by_interface: Mapping[str, Mapping[int, int]],
                 sums: Mapping[str, int], sample: int = 1) -> list[Point]:
    """Per-interface histograms; the kernel timed one queued packet in ``sample``."""
    definition = metric("netreceiver.netif.tx.latency")
    return [Point(definition, attrs({"network.interface.name": ifname}),
                  histogram(slots, sums.get(ifname, 0), sample))
            for ifname, slots in by_interface.items()]


DIRECTIONS = {0: "receive", 1: "transmit"}
# include/uapi/linux/virtio_net.h, VIRTIO_NET_CTRL_* classes
VIRTIO_CTRL_CLASSES = {0: "rx", 1: "mac", 2: "vlan", 3: "announce", 4: "mq",
                       5: "guest_offloads", 6: "notf_coal", 7: "guest_hdr", 8: "stats"}


def pod_latency_points(name: str, rows: Iterable[tuple[int, int, int, int, int]],
                       labels: NetnsLabels) -> list[Point]:
    """(netns, direction, slot, count, sum ns) → one histogram per pod and direction."""
    by_key: defaultdict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    sums: defaultdict[tuple[int, int], int] = defaultdict(int)
    for netns, direction, slot, count, total in rows:
        by_key[(netns, direction)][slot] = by_key[(netns, direction)].get(slot, 0) + count
        sums[(netns, direction)] += total
    definition = metric(name)
    return [Point(definition, _with(labels(netns), **{"network.io.direction":
                                                      DIRECTIONS.get(direction, str(direction))}),
                  histogram(buckets, sums[(netns, direction)]))
            for (netns, direction), buckets in by_key.items()]


def timewait_points(items: Iterable[tuple[int, int]], labels: NetnsLabels) -> list[Point]:
    definition = metric("netreceiver.pod.tcp.timewait_segments")
    totals: defaultdict[Attributes, int] = defaultdict(int)
    for netns, count in items:
        totals[labels(netns)] += count
    return [Point(definition, a, count) for a, count in totals.items()]


def virtcmd_points(by_class: Mapping[int, Mapping[int, int]],
                   sums: Mapping[int, int]) -> list[Point]:
    definition = metric("netreceiver.virtio.ctrl.latency")
    return [Point(definition, attrs({"virtio.ctrl.class": VIRTIO_CTRL_CLASSES.get(c, str(c))}),
                  histogram(slots, sums.get(c, 0)))
            for c, slots in by_class.items()]
