"""The data every collector hands to the runtime.

A collector never talks to an exporter. Each cycle it returns a
:class:`Collection`: plain, frozen facts (metric definition, attribute set,
value). The runtime's series store turns those into cumulative series with
start times, and every exporter renders the same store. Keeping points this
small is deliberate: the OpenTelemetry SDK's instrument path costs ~20 µs per
point (BENCHMARKS.md, "Export path"), which per-pod counters cannot
afford.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

Attributes = tuple[tuple[str, str], ...]
"""A sorted tuple of (key, value) pairs: hashable, cheap to compare."""


def attrs(mapping: Mapping[str, object] | None = None, /, **kwargs: object) -> Attributes:
    """Build a canonical attribute tuple; ``None`` values are left out."""
    merged: dict[str, object] = dict(mapping or {})
    merged.update(kwargs)
    return tuple(sorted((k, str(v)) for k, v in merged.items() if v is not None))


class Kind(enum.Enum):
    """How a metric behaves, which decides its OTLP and Prometheus shape."""

    COUNTER = "counter"  # monotonic cumulative sum
    GAUGE = "gauge"  # a level that may go up and down
    HISTOGRAM = "histogram"  # cumulative explicit-bucket histogram


class Scope(enum.Enum):
    """Where the kernel keeps the number: once per node, or per network namespace/pod."""

    NODE = "node"
    POD = "pod"


@dataclass(frozen=True, slots=True, eq=False)
class MetricDef:
    """One row of the catalogue: name, unit and attributes of a metric.

    Compared and hashed by identity (``eq=False``): definitions are the catalogue's
    singletons, and the store looks a series up by (definition, attributes) for every
    point of every cycle, where hashing all fields cost more than a microsecond.
    """

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...] = ()
    scope: Scope = Scope.NODE
    source: str = ""  # the collector that produces it, for the docs


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """A cumulative explicit-bucket histogram, bounds in the metric's unit.

    ``bucket_counts`` has ``len(bounds) + 1`` entries; the last is the overflow
    bucket (OTLP's convention).
    """

    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    sum: float
    count: int

    def __post_init__(self) -> None:
        if len(self.bucket_counts) != len(self.bounds) + 1:
            want, got = len(self.bounds) + 1, len(self.bucket_counts)
            raise ValueError(f"histogram needs {want} bucket counts, got {got}")


Value = int | float | HistogramValue


@dataclass(frozen=True, slots=True)
class Point:
    """One observation: a metric, its attributes and the value read now."""

    metric: MetricDef
    attributes: Attributes
    value: Value


class Block(NamedTuple):
    """Several series read together (one line of a per-pod file): keys and values in step.

    A collector that reads the same lines every cycle hands back the same ``keys``
    tuple while the layout holds, and the same ``values`` tuple while nothing on the
    line moved; the series store then advances the whole block at once instead of
    one point per value (runtime/store.py). A NamedTuple, not a frozen dataclass:
    one is built per changed line per cycle, and its construction is a third of the
    cost.
    """

    keys: tuple[tuple[MetricDef, Attributes], ...]
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Collection:
    """What one collector saw in one cycle.

    Every series the collector still sees must be in ``points``: a series
    missing from the next collection is gone (its pod or interface vanished)
    and is dropped from export within that cycle.
    """

    collector: str
    points: tuple[Point, ...]
    time_unix_nano: int
    errors: tuple[str, ...] = ()
    # Series whose underlying object was replaced (e.g. an interface recreated
    # under the same name): their cumulative state restarts with a new start
    # time even if the new value happens to be larger than the old one.
    restarted: frozenset[tuple[str, Attributes]] = field(default_factory=frozenset)
    # Series reported in blocks (see Block), in export order before ``points``; a
    # series is reported either in a block or as a point, not both.
    blocks: tuple[Block, ...] = ()

    @staticmethod
    def of(
        collector: str,
        points: Iterable[Point],
        time_unix_nano: int,
        errors: Iterable[str] = (),
        blocks: Iterable[Block] = (),
    ) -> Collection:
        return Collection(collector, tuple(points), time_unix_nano, tuple(errors),
                          blocks=tuple(blocks))

    def every_point(self) -> list[Point]:
        """Every observation as a Point, blocks first (for readers that are not the store)."""
        out = [Point(metric, attributes, value) for block in self.blocks
               for (metric, attributes), value in zip(block.keys, block.values, strict=True)]
        return out + list(self.points)


@dataclass(frozen=True, slots=True)
class ProbeStatus:
    """A line of the capability report: is this collector working, and if not, why."""

    name: str
    active: bool
    reason: str = ""
    details: tuple[tuple[str, str], ...] = ()


class SeriesPoint(NamedTuple):
    """One exported point of a series.

    A NamedTuple, immutable like the dataclasses here but built in a third of the
    time: every snapshot builds one per exported series (thousands per cycle for
    per-pod counters; BENCHMARKS.md, busy pods).
    """

    attributes: Attributes
    start_time_unix_nano: int
    time_unix_nano: int
    value: Value
    baseline_time_unix_nano: int = 0  # a zero point to send first (see module docstring)


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """All current series of one metric."""

    metric: MetricDef
    points: tuple[SeriesPoint, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the store holds at one moment; exporters render this."""

    time_unix_nano: int
    metrics: tuple[MetricSeries, ...]

    def point_count(self) -> int:
        return sum(len(m.points) for m in self.metrics)

    def find(self, name: str) -> MetricSeries | None:
        return next((m for m in self.metrics if m.metric.name == name), None)
