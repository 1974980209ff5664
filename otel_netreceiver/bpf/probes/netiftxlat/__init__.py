"""netiftxlat: time from net:net_dev_queue to net:net_dev_xmit per interface, one queued
packet in collectors.ebpf.timing_sample timed; event type NETIF_TXLAT_SLOW (opt-in)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

from otel_netreceiver.bpf.probe import EventType, MetricRow, Probe
from otel_netreceiver.bpf.programs import Attach, ProbeSpec, StructSpec
from otel_netreceiver.bpf.readers import definition, histogram
from otel_netreceiver.model import Kind, Point, attrs

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps
    from otel_netreceiver.events.model import Record

METRIC = "netreceiver.netif.tx.latency"


def txlat_points(by_interface: Mapping[str, Mapping[int, int]],
                 sums: Mapping[str, int], sample: int = 1) -> list[Point]:
    """Per-interface histograms; the kernel timed one queued packet in ``sample``."""
    metric = definition(METRIC)
    return [Point(metric, attrs({"network.interface.name": ifname}),
                  histogram(slots, sums.get(ifname, 0), sample))
            for ifname, slots in by_interface.items()]


def read(maps: ProbeMaps) -> list[Point]:
    slots: defaultdict[str, dict[int, int]] = defaultdict(dict)
    sums: defaultdict[str, int] = defaultdict(int)
    for key, per_cpu in maps.table("tx_latency").items():  # per-CPU {count, sum}
        ifname = key.ifname.decode(errors="replace")
        slots[ifname][key.slot] = sum(v.count for v in per_cpu)
        sums[ifname] += sum(v.sum for v in per_cpu)
    return txlat_points(slots, sums, maps.config.timing_sample)


def event_attributes(record: Record) -> dict[str, str]:
    return {"network.interface.name": record.ifname}


def _structs(fields: tuple[str, ...]) -> tuple[StructSpec, ...]:
    return (StructSpec("QUEUE_ARGS_STRUCT", "net", "net_dev_queue", "queue_args", fields),
            StructSpec("XMIT_ARGS_STRUCT", "net", "net_dev_xmit", "xmit_args", fields))


PROBE = Probe(
    "netiftxlat",
    ProbeSpec("netiftxlat", "counting.c", (Attach("net", "net_dev_queue", "on_queue"),
                                           Attach("net", "net_dev_xmit", "on_xmit")),
              _structs(("skbaddr", "name")), needs_btf=False, package=__name__),
    read,
    (MetricRow(METRIC, Kind.HISTOGRAM, "s", ("network.interface.name",),
               "Time from net:net_dev_queue to net:net_dev_xmit per interface: qdisc plus "
               "driver, log2 buckets (probe netiftxlat). Sampled: the kernel times one queued "
               "packet in collectors.ebpf.timing_sample, chosen at random, and counts and sum "
               "are the timed ones multiplied by it (estimates; exact packet counts: "
               "netreceiver's interface counters).", pod=False),),
    default=False,
    events=ProbeSpec("netiftxlat", "events.c", (Attach("net", "net_dev_queue", "ev_on_queue"),
                                                Attach("net", "net_dev_xmit", "ev_on_xmit")),
                     _structs(("skbaddr", "name")), needs_btf=False, package=__name__),
    event_types=(EventType("NETIF_TXLAT_SLOW", 13, "WARN", False,
                           attributes=event_attributes),),
    opt_in="runs on every transmitted packet",
)
