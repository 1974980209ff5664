"""The series store: collections in, cumulative series with start times out.

Why not the OpenTelemetry SDK's observable instruments: they cost ~20 µs per
point (REFERENCE.md), keep every attribute set they ever saw in memory, have
no cardinality limit, and cannot start a new series start time when a kernel
counter resets (an interface recreated, a driver reset). This store does
those four things and nothing else; exporters render its snapshots.

Semantics:
- A collector's collection replaces that collector's series: a series it no
  longer reports is gone from the next snapshot and its state is freed.
- Counters and histograms keep a start time; a value that goes down (or a
  series the collector flags as restarted) starts a new one, so backends see
  a reset instead of a negative rate.
- Each metric holds at most ``max_series_per_instrument`` series; series
  already held keep their place, new ones over the cap are refused and counted.
- Quiet pods stay cheap (seed 004): with ``suppress_quiet``, a per-pod counter
  that has never left zero is not in snapshots. The cycle it first moves, its
  point carries a zero baseline at the previous observation's time, so the
  backend gets 0 then the new value and rate()/increase() see the first
  increment. The baseline is repeated until ``ack_baselines`` confirms an export.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from otel_netreceiver.model import (
    Attributes,
    Collection,
    HistogramValue,
    Kind,
    MetricDef,
    Point,
    Scope,
    Value,
)

SeriesKey = tuple[MetricDef, Attributes]


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One exported point of a series."""

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


class _State:
    __slots__ = ("baseline", "moved", "point", "start", "time", "value")

    def __init__(self, start: int, time_ns: int, point: Point) -> None:
        self.start, self.time, self.value, self.point = start, time_ns, point.value, point
        self.moved = point.value != 0
        self.baseline = 0


def _went_down(kind: Kind, old: Value, new: Value) -> bool:
    if kind is Kind.COUNTER:
        return new < old  # type: ignore[operator]
    if isinstance(old, HistogramValue) and isinstance(new, HistogramValue):
        return new.count < old.count or new.bounds != old.bounds
    return False


class SeriesStore:
    """Thread-safe: collectors update from their threads, exporters snapshot from theirs."""

    def __init__(self, max_series_per_instrument: int = 10000,
                 clock: Callable[[], int] = time.time_ns, suppress_quiet: bool = True) -> None:
        self._cap = max_series_per_instrument
        self._suppress = suppress_quiet
        self._suppressed: dict[str, int] = {}
        self._clock = clock
        self._created = clock()
        self._lock = threading.Lock()
        self._by_collector: dict[str, dict[SeriesKey, _State]] = {}
        self._count: defaultdict[str, int] = defaultdict(int)  # series per metric name
        self._dropped: defaultdict[str, int] = defaultdict(int)
        self._first_cycle: set[str] = set()

    def set_cap(self, max_series_per_instrument: int) -> None:
        with self._lock:
            self._cap = max_series_per_instrument

    def set_suppress_quiet(self, suppress: bool) -> None:
        with self._lock:
            self._suppress = suppress

    def update(self, collection: Collection) -> None:
        """Replace the series of ``collection.collector`` with what it saw now."""
        with self._lock:
            old = self._by_collector.get(collection.collector, {})
            for key in old:
                self._count[key[0].name] -= 1
            fresh = collection.collector not in self._first_cycle
            self._first_cycle.add(collection.collector)
            new = self._merge(old, collection, fresh)
            self._by_collector[collection.collector] = new

    def _merge(self, old: dict[SeriesKey, _State], collection: Collection,
               fresh: bool) -> dict[SeriesKey, _State]:
        """Held series first, so a newcomer never takes the place of a series we export.

        Fast path: a collector that saw nothing change hands back the very same Point
        object (collectors memoize unchanged inputs), so the series only moves its
        timestamp; that is most series of most pods in most cycles.
        """
        now, restarted, count = collection.time_unix_nano, collection.restarted, self._count
        new: dict[SeriesKey, _State] = {}
        newcomers: list[tuple[SeriesKey, Point]] = []
        for point in collection.points:
            key = (point.metric, point.attributes)
            state = old.get(key)
            if state is None:
                newcomers.append((key, point))
                continue
            if key in new:
                continue  # first observation of a series in a cycle wins
            if state.point is point and not restarted:
                state.time = now
            else:
                state = self._advance(state, point, now, (point.metric.name, point.attributes)
                                      in restarted)
            new[key] = state
            count[point.metric.name] += 1
        for key, point in newcomers:
            if key in new:
                continue
            if count[point.metric.name] >= self._cap:
                self._dropped[point.metric.name] += 1
                continue
            # Series seen in a collector's first cycle started no later than the agent;
            # later arrivals (a new pod, a new interface) start when first seen.
            new[key] = _State(self._created if fresh else now, now, point)
            count[point.metric.name] += 1
        return new

    @staticmethod
    def _advance(state: _State, point: Point, now: int, restarted: bool) -> _State:
        if restarted or _went_down(point.metric.kind, state.value, point.value):
            fresh_state = _State(state.time, now, point)
            fresh_state.moved = True  # it was exported before; keep exporting it
            return fresh_state
        if not state.moved and point.value != 0:
            state.moved, state.baseline = True, state.time
        state.time, state.value, state.point = now, point.value, point
        return state

    def remove_collector(self, name: str) -> None:
        """Forget a collector's series (it was disabled by a reload)."""
        with self._lock:
            for key in self._by_collector.pop(name, {}):
                self._count[key[0].name] -= 1
            self._first_cycle.discard(name)

    def suppressed(self) -> dict[str, int]:
        """Quiet series held back in the last snapshot, per metric."""
        with self._lock:
            return dict(self._suppressed)

    def ack_baselines(self, snapshot: Snapshot) -> None:
        """The snapshot was exported: its zero baselines need not be sent again."""
        with self._lock:
            for series in snapshot.metrics:
                for point in series.points:
                    if point.baseline_time_unix_nano:
                        self._clear_baseline((series.metric, point.attributes))

    def _clear_baseline(self, key: SeriesKey) -> None:
        for held in self._by_collector.values():
            state = held.get(key)
            if state is not None:
                state.baseline = 0
                return

    def dropped(self) -> dict[str, int]:
        """Series refused by the cap so far, per metric (cumulative)."""
        with self._lock:
            return dict(self._dropped)

    def snapshot(self, collectors: Iterable[str] | None = None) -> Snapshot:
        """Group every exported series by metric, in name order."""
        with self._lock:
            wanted = set(collectors) if collectors is not None else None
            grouped: dict[MetricDef, list[SeriesPoint]] = {}
            suppressed: defaultdict[str, int] = defaultdict(int)
            suppress, counter, pod = self._suppress, Kind.COUNTER, Scope.POD
            for name, series in self._by_collector.items():
                if wanted is not None and name not in wanted:
                    continue
                for (metric, attributes), st in series.items():
                    # _quiet() inlined: this loop runs for every series every cycle
                    if (suppress and not st.moved and metric.kind is counter
                            and metric.scope is pod):
                        suppressed[metric.name] += 1
                        continue
                    grouped.setdefault(metric, []).append(
                        SeriesPoint(attributes, st.start, st.time, st.value, st.baseline))
            self._suppressed = dict(suppressed)
            now = self._clock()
        metrics = tuple(MetricSeries(m, tuple(p)) for m, p in
                        sorted(grouped.items(), key=lambda kv: kv[0].name))
        return Snapshot(now, metrics)
