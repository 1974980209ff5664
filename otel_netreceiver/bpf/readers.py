"""Helpers the probes' readers share (pure: map items in, points out).

Keys carry a namespace cookie or inode; ``NetnsLabels`` turns it into pod attributes
(0: the kernel could not tell, netns.kind=unknown). Histograms arrive as log2 slots
of nanoseconds (bpf_log2l: slot s holds [2^(s-1), 2^s)) and leave as OTLP
explicit-bucket histograms in seconds with bounds 2^s ns. Each probe's own reader
is in its module (bpf/probes/<name>/).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from otel_netreceiver.model import Attributes, HistogramValue, MetricDef, Point

FIRST_SLOT, LAST_SLOT = 10, 34  # 1.024 µs .. 17.2 s; faster events fold into the first bucket
BOUNDS = tuple(2**s / 1e9 for s in range(FIRST_SLOT, LAST_SLOT + 1))

NetnsLabels = Callable[[int], Attributes]


def definition(name: str) -> MetricDef:
    """The catalogue row of ``name``. Imported when called: the catalogue takes the probes'
    rows from their modules, so a probe module cannot import it while being imported."""
    from otel_netreceiver.catalogue import metric

    return metric(name)


def with_attrs(base: Attributes, **extra: str) -> Attributes:
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


def per_pod_counts(name: str, items: Iterable[tuple[int, int]],
                   labels: NetnsLabels) -> list[Point]:
    """(netns, count) → one counter per pod."""
    metric = definition(name)
    totals: defaultdict[Attributes, int] = defaultdict(int)
    for netns, count in items:
        totals[labels(netns)] += count
    return [Point(metric, a, count) for a, count in totals.items()]


DIRECTIONS = {0: "receive", 1: "transmit"}


def pod_latency_points(name: str, rows: Iterable[tuple[int, int, int, int, int]],
                       labels: NetnsLabels) -> list[Point]:
    """(netns, direction, slot, count, sum ns) → one histogram per pod and direction
    (include/podlatency.h's map, shared by socketlatency and kernellatency)."""
    by_key: defaultdict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    sums: defaultdict[tuple[int, int], int] = defaultdict(int)
    for netns, direction, slot, count, total in rows:
        by_key[(netns, direction)][slot] = by_key[(netns, direction)].get(slot, 0) + count
        sums[(netns, direction)] += total
    metric = definition(name)
    return [Point(metric, with_attrs(labels(netns), **{"network.io.direction":
                                                       DIRECTIONS.get(direction,
                                                                      str(direction))}),
                  histogram(buckets, sums[(netns, direction)]))
            for (netns, direction), buckets in by_key.items()]
