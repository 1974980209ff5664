"""The series store: collections in, cumulative series with start times out.

Why not the OpenTelemetry SDK's observable instruments: they cost ~20 µs per
point (BENCHMARKS.md, "Export path"), keep every attribute set they ever saw in memory, have
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
- Series come as points or in blocks (model.Block; runtime/series.py): blocks are
  taken first, in the collection's order, then points; the export order follows.
- Quiet pods stay cheap (docs/background.md, "Per-pod kernel counters"): with
  ``suppress_quiet``, a per-pod counter that has never left zero is not in snapshots.
  The cycle it first moves, its point carries a zero baseline at the previous
  observation's time, so the backend gets 0 then the new value and rate()/increase() see
  the first increment. The baseline is repeated until ``ack_baselines`` confirms an
  export.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from otel_netreceiver.model import (
    Collection,
    MetricDef,
    MetricSeries,
    Point,
    SeriesPoint,
    Snapshot,
)
from otel_netreceiver.runtime.series import (
    Held,
    Newcomer,
    SeriesKey,
    State,
    mark_blocks,
    move,
)


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
        self._by_collector: dict[str, Held] = {}
        self._count: defaultdict[str, int] = defaultdict(int)  # series per metric name
        self._dropped: defaultdict[str, int] = defaultdict(int)
        self._cycle = 0  # updates so far: the mark of series reported by this one
        self._tick = 0  # next _State.pos

    def set_cap(self, max_series_per_instrument: int) -> None:
        with self._lock:
            self._cap = max_series_per_instrument

    def set_suppress_quiet(self, suppress: bool) -> None:
        with self._lock:
            self._suppress = suppress

    def update(self, collection: Collection) -> None:
        """Replace the series of ``collection.collector`` with what it saw now.

        Held series first (marked in place), then the ones no longer reported are
        swept, freeing their slots, and only then do newcomers compete for slots, so a
        newcomer never takes the place of a series we export.
        """
        with self._lock:
            self._cycle += 1
            held = self._by_collector.get(collection.collector)
            fresh = held is None
            if held is None:
                held = self._by_collector[collection.collector] = Held()
            newcomers, marked, ordered = self._mark(held, collection)
            if marked < len(held.by_key):
                self._sweep(held)
            if not ordered:
                self._reorder(held, collection)
            self._admit(held, newcomers, collection.time_unix_nano, fresh)
            if held.stale:
                for bh in held.blocks.values():
                    bh.spans()
                held.stale = False

    def _mark(self, held: Held, collection: Collection) -> tuple[list[Newcomer], int, bool]:
        """Advance and mark the held series reported (blocks first: runtime/series.py).

        A point object seen last cycle is found by its id (no hashing of the attributes
        tuple) and only moves its timestamp. Returns the unknown series, how many were
        marked and whether they came in the held dict's order (the export order follows
        the collection's, as if the dict were rebuilt each cycle).
        """
        cycle, now, restarted = self._cycle, collection.time_unix_nano, collection.restarted
        by_id, by_key, advance = held.by_id.get, held.by_key.get, self._advance
        newcomers: list[Newcomer] = []
        marked, last, ordered = 0, -1, True
        if collection.blocks or held.blocks:
            marked, last, ordered = mark_blocks(held, collection.blocks, cycle, now, restarted,
                                                newcomers)
        for point in collection.points:
            state = by_id(id(point))
            if state is None or state.point is not point:
                key = (point.metric, point.attributes)
                state = by_key(key)
                if state is None:
                    newcomers.append((key, point.value, point, None, 0))
                    continue
                if state.seen == cycle or (state.group or state).seen == cycle:
                    continue  # first observation of a series in a cycle wins
                advance(held, state, point, now, bool(restarted)
                        and (point.metric.name, point.attributes) in restarted)
            elif state.seen == cycle:
                continue
            elif restarted:
                advance(held, state, point, now, (point.metric.name, point.attributes)
                        in restarted)
            else:
                state.time = now
            state.seen = cycle
            marked += 1
            if state.pos < last:
                ordered = False
            last = state.pos
        return newcomers, marked, ordered

    def _sweep(self, held: Held) -> None:
        """Free the series this cycle did not report (their pod or interface is gone)."""
        cycle, count = self._cycle, self._count
        gone = [key for key, state in held.by_key.items() if (state.group or state).seen != cycle]
        for key in gone:
            state = held.by_key.pop(key)
            if state.point is not None:
                del held.by_id[id(state.point)]
            count[key[0].name] -= 1
        held.loud = None

    def _reorder(self, held: Held, collection: Collection) -> None:
        """Rebuild the held dict in the collection's order (rare: the order changed).

        After _mark and _sweep every held state's point is the first point of its
        series in ``points``, or its block holder the first holding it, so each state
        is placed at its first observation.
        """
        by_id, order, first = held.by_id.get, {}, self._tick
        blocks = held.blocks.get
        for block in collection.blocks:
            bh = blocks(id(block.keys))
            if bh is None or bh.keys is not block.keys:
                continue
            for key, state in zip(block.keys, bh.states, strict=True):
                if state is not None and state.group is bh and state.pos < first:
                    state.pos, self._tick = self._tick, self._tick + 1
                    order[key] = state
        held.stale = True
        for point in collection.points:
            state = by_id(id(point))
            if state is not None and state.point is point and state.pos < first:
                state.pos, self._tick = self._tick, self._tick + 1
                order[(point.metric, point.attributes)] = state
        held.by_key, held.loud = order, None

    def _admit(self, held: Held, newcomers: list[Newcomer], now: int, fresh: bool) -> None:
        """Add new series while their metric has room; count the ones refused."""
        by_key, by_id, count, cycle = held.by_key, held.by_id, self._count, self._cycle
        # Series seen in a collector's first cycle started no later than the agent;
        # later arrivals (a new pod, a new interface) start when first seen.
        start = self._created if fresh else now
        for key, value, point, bh, index in newcomers:
            if key in by_key:
                continue
            name = key[0].name
            if count[name] >= self._cap:
                self._dropped[name] += 1
                continue
            state = by_key[key] = State(start, now, value, point, cycle, self._tick)
            if bh is None:
                by_id[id(point)] = state
            else:
                bh.states[index], state.group = state, bh
                held.stale = True
            self._tick += 1
            count[name] += 1
            held.loud = None

    @staticmethod
    def _advance(held: Held, state: State, point: Point, now: int, restarted: bool) -> None:
        """Move a held series to ``point``, in place; a reset starts a new start time."""
        if point is not state.point:
            if state.point is not None:
                del held.by_id[id(state.point)]
            held.by_id[id(point)] = state
        group = state.group
        if group is not None:  # it was reported in a block until now
            group.complete, state.time, state.group = False, group.time, None
        move(held, state, point.metric.kind, point.value, state.time, restarted)
        state.time, state.point = now, point

    def remove_collector(self, name: str) -> None:
        """Forget a collector's series (it was disabled by a reload)."""
        with self._lock:
            held = self._by_collector.pop(name, None)
            for key in held.by_key if held is not None else ():
                self._count[key[0].name] -= 1

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
            state = held.by_key.get(key)
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
            for name, held in self._by_collector.items():
                if wanted is not None and name not in wanted:
                    continue
                series: Iterable[tuple[SeriesKey, State]] = held.by_key.items()
                if self._suppress:
                    series = held.split()
                    for metric_name, quiet in held.quiet.items():
                        suppressed[metric_name] += quiet
                for (metric, attributes), st in series:
                    points = grouped.get(metric)
                    if points is None:
                        points = grouped[metric] = []
                    points.append(SeriesPoint(attributes, st.start, (st.group or st).time,
                                              st.value, st.baseline))
            self._suppressed = dict(suppressed)
            now = self._clock()
        metrics = tuple(MetricSeries(m, tuple(p)) for m, p in
                        sorted(grouped.items(), key=lambda kv: kv[0].name))
        return Snapshot(now, metrics)
