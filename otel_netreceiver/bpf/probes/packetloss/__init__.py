"""packetloss: skb:kfree_skb per pod and drop reason, and node-wide per drop site; event
type PACKETLOSS with the dropped packet's addresses and protocol."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from otel_netreceiver.bpf.probe import EventType, MetricRow, Probe
from otel_netreceiver.bpf.probes.packetloss.slots import drop_totals
from otel_netreceiver.bpf.programs import Attach, ProbeSpec, StructSpec
from otel_netreceiver.bpf.readers import NetnsLabels, definition, with_attrs
from otel_netreceiver.model import Kind, Point, attrs

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps
    from otel_netreceiver.events.model import Names, Record

DROPS, SITES = "netreceiver.pod.packet.drops", "netreceiver.packet.drop_sites"
L4_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}
ETH_P = {0x0800: "ipv4", 0x86DD: "ipv6", 0x0806: "arp"}


def drop_points(items: Iterable[tuple[int, int, int]], reasons: Mapping[int, str],
                labels: NetnsLabels) -> list[Point]:
    """(netns, reason, count) → per-pod drops by reason name."""
    totals: defaultdict[tuple[int, str], int] = defaultdict(int)
    for netns, reason, count in items:
        totals[(netns, reasons.get(reason, str(reason)))] += count
    metric = definition(DROPS)
    return [Point(metric, with_attrs(labels(netns), **{"drop.reason": reason}), count)
            for (netns, reason), count in totals.items()]


def site_points(items: Iterable[tuple[int, int, int]], reasons: Mapping[int, str],
                symbol: Callable[[int], str]) -> list[Point]:
    """(location, reason, count) → node-wide drops by reason and kernel function."""
    totals: defaultdict[tuple[str, str], int] = defaultdict(int)
    for location, reason, count in items:
        totals[(reasons.get(reason, str(reason)), symbol(location))] += count
    metric = definition(SITES)
    return [Point(metric, attrs({"drop.reason": r, "drop.location": loc}), count)
            for (r, loc), count in totals.items()]


def read(maps: ProbeMaps) -> list[Point]:
    reasons = maps.enum("skb", "kfree_skb", "reason")
    totals = drop_totals(maps)  # the hash plus the per-CPU last-key slots (slots.py)
    drops = [(netns, reason, count) for (_, netns, reason), count in totals.items()]
    sites = [(location, reason, count) for (location, _, reason), count in totals.items()]
    return drop_points(drops, reasons, maps.labels) + site_points(sites, reasons, maps.symbol)


def event_reason(record: Record, names: Names) -> str:
    return names.enum("skb", "kfree_skb", "reason").get(record.reason, str(record.reason))


def event_attributes(record: Record) -> dict[str, str]:
    out = {"network.protocol": ETH_P.get(record.protocol, f"0x{record.protocol:04x}")}
    if record.l4:
        out["network.transport"] = L4_NAMES.get(record.l4, str(record.l4))
    return out


PROBE = Probe(
    "packetloss",
    ProbeSpec("packetloss", "counting.c", (Attach("skb", "kfree_skb", "on_kfree_skb"),),
              (StructSpec("ARGS_STRUCT", "skb", "kfree_skb", "kfree_skb_args",
                          ("skbaddr", "location", "rx_sk", "reason")),), package=__name__),
    read,
    (MetricRow(SITES, Kind.COUNTER, "{packet}", ("drop.reason", "drop.location"),
               "Dropped packets by reason and by the kernel function that freed them "
               "(kallsyms), node wide (probe packetloss; capped like every instrument).",
               pod=False),
     MetricRow(DROPS, Kind.COUNTER, "{packet}", ("drop.reason",),
               "Packets the kernel freed as dropped (skb:kfree_skb), by the running kernel's "
               "drop reason name, in the namespace the skb's socket or device belongs to "
               "(probe packetloss).", pod=True)),
    default=True,
    events=ProbeSpec("packetloss", "events.c", (Attach("skb", "kfree_skb", "ev_on_kfree_skb"),),
                     (StructSpec("ARGS_STRUCT", "skb", "kfree_skb", "kfree_skb_args",
                                 ("skbaddr", "location", "rx_sk", "protocol", "reason")),),
                     package=__name__),
    event_types=(EventType("PACKETLOSS", 13, "WARN", True, event_reason, event_attributes),),
    symbols=True,
)
