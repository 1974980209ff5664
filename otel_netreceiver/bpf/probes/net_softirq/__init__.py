"""net_softirq: NET_RX/NET_TX softirq schedule delay and run time (irq:softirq_*), node wide,
one run in collectors.ebpf.timing_sample timed; event type NET_SOFTIRQ_SLOW (opt-in)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

from otel_netreceiver.bpf.maps import total
from otel_netreceiver.bpf.probe import EventType, MetricRow, Probe
from otel_netreceiver.bpf.programs import Attach, ProbeSpec
from otel_netreceiver.bpf.readers import definition, histogram
from otel_netreceiver.kernel_abi import SOFTIRQ_VECTOR_NAMES
from otel_netreceiver.model import Kind, Point, attrs

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps
    from otel_netreceiver.events.model import Record

METRIC = "netreceiver.softirq.latency"


def softirq_points(phases: Mapping[str, tuple[Mapping[int, Mapping[int, int]],
                                              Mapping[int, int]]],
                   sample: int = 1) -> list[Point]:
    """phase → ({vector: {slot: count}}, {vector: sum ns}) → histograms per vector and phase.

    ``sample``: collectors.ebpf.timing_sample, the kernel timed one run in this many."""
    metric = definition(METRIC)
    points = []
    for phase, (by_vector, sums) in phases.items():
        for vector, name in SOFTIRQ_VECTOR_NAMES.items():
            points.append(Point(metric, attrs({"softirq.vector": name,
                                               "softirq.phase": phase}),
                                histogram(by_vector.get(vector, {}), sums.get(vector, 0),
                                          sample)))
    return points


def read(maps: ProbeMaps) -> list[Point]:
    phases = {}
    for phase, hist, sums in (("schedule", "sched_delay", "sched_sum"),
                              ("execute", "exec_time", "exec_sum")):
        slots: defaultdict[int, dict[int, int]] = defaultdict(dict)
        for key, value in maps.table(hist).items():
            slots[key.vec][key.slot] = int(value.value)
        phases[phase] = (slots, {k.value: total(v) for k, v in maps.table(sums).items()})
    return softirq_points(phases, maps.config.timing_sample)


def event_attributes(record: Record) -> dict[str, str]:
    return {"softirq.vector": SOFTIRQ_VECTOR_NAMES.get(record.reason, str(record.reason)),
            "softirq.phase": "schedule" if record.state == 0 else "execute"}


PROBE = Probe(
    "net_softirq",
    ProbeSpec("net_softirq", "counting.c", (Attach("irq", "softirq_raise", "on_raise"),
                                            Attach("irq", "softirq_entry", "on_entry"),
                                            Attach("irq", "softirq_exit", "on_exit")),
              needs_btf=False, package=__name__),
    read,
    (MetricRow(METRIC, Kind.HISTOGRAM, "s", ("softirq.vector", "softirq.phase"),
               "NET_RX/NET_TX softirq delay from raise to run (phase schedule) and run time "
               "(phase execute), log2 buckets from the kernel (probe net_softirq). Sampled: the "
               "kernel times one run in collectors.ebpf.timing_sample, chosen at random, and "
               "counts and sum are the timed ones multiplied by it (estimates; the exact "
               "number of runs is in /proc/softirqs).", pod=False),),
    default=False,
    events=ProbeSpec("net_softirq", "events.c", (Attach("irq", "softirq_raise", "ev_on_raise"),
                                                 Attach("irq", "softirq_entry", "ev_on_entry"),
                                                 Attach("irq", "softirq_exit", "ev_on_exit")),
                     needs_btf=False, package=__name__),
    event_types=(EventType("NET_SOFTIRQ_SLOW", 13, "WARN", False,
                           attributes=event_attributes),),
    opt_in="runs on every network softirq",
)
