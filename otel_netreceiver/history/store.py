"""Recent values of selected series, so a question about a past window can be answered.

The node API's correlation and local diagnosis ask "how much did this
counter move between t0 and t1?". The series store keeps only the current value, so
this keeps, per series, its *change points*: an observation is stored only when the
value differs from the last one. Most kernel counters of most pods never move, so a
quiet series costs one sample however often it is observed, and history memory follows
how much the node's counters move, not how many there are (docs/background.md,
"Series that stop").

Semantics: ``value_at(t)`` is the value of the latest observation at or before ``t``;
``increase(t0, t1)`` is ``value_at(t1) - value_at(t0)`` with the observation times it
used, so callers report the window actually measured. A counter that went down (its
pod's namespace was recreated, a driver reset) counts from zero after the reset.
Samples older than the window are dropped, except the one that gives ``value_at`` at
the window's start; series not observed for a whole window are forgotten.

A series first seen after the window's start normally counts from its first observation
(a pod found late counted before we looked). Collectors named in ``born_at_zero`` are
different: an eBPF map entry is created by its first event (bpf/probes/*/counting.c, ``bump``:
lookup, else update with 1), so a series such a collector reports for the first time
counted nothing at its previous read, and gets a zero there. Without it, the first reset
or drop of a kind in a pod, the very event a question asks about, had no increase.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from itertools import chain

from otel_netreceiver.model import Attributes, HistogramValue, Value
from otel_netreceiver.model import Collection as PointCollection

SeriesKey = tuple[str, Attributes]


@dataclass(frozen=True, slots=True)
class Window:
    """A series' first and last values over a window, and the observations that show it."""

    metric: str
    attributes: Attributes
    first: Value
    last: Value
    start_unix_nano: int  # time of the observation used as the baseline
    end_unix_nano: int  # time of the latest observation used
    reset: bool = False  # the counter went down inside the window (count from zero)
    peak: float = 0.0  # the highest scalar value observed in the window (a queue's worst)

    @property
    def seconds(self) -> float:
        return (self.end_unix_nano - self.start_unix_nano) / 1e9

    @property
    def delta(self) -> float:
        first, last = _count(self.first), _count(self.last)
        return last if self.reset else last - first


def _count(value: Value) -> float:
    return float(value.count) if isinstance(value, HistogramValue) else float(value)


class _Series:
    __slots__ = ("last_seen", "times", "values")

    def __init__(self, t: int, value: float) -> None:
        self.times, self.values, self.last_seen = [t], [value], t

    def index_at(self, t: int) -> int:
        """Index of the latest change point at or before ``t`` (-1: none)."""
        return bisect_right(self.times, t) - 1


def _zero(value: Value) -> Value:
    if isinstance(value, HistogramValue):
        return HistogramValue(value.bounds, (0,) * len(value.bucket_counts), 0.0, 0)
    return 0


def _storable(value: object) -> Value | None:
    return value if isinstance(value, int | float | HistogramValue) else None


def _same(a: Value, b: Value) -> bool:
    """Histograms change when they count something; scalars when they differ."""
    if isinstance(a, HistogramValue) and isinstance(b, HistogramValue):
        return a.count == b.count and a.bounds == b.bounds
    return a == b


class History:
    """Thread-safe change-point history of the metrics named in ``metrics``."""

    def __init__(self, window_seconds: float, metrics: Collection[str],
                 clock: Callable[[], int] = time.time_ns,
                 born_at_zero: Collection[str] = ()) -> None:
        self._window = int(window_seconds * 1e9)
        self._metrics = frozenset(metrics)
        self._clock = clock
        self._born_at_zero = frozenset(born_at_zero)
        self._previous: dict[str, int] = {}  # born_at_zero collector → its last collection
        self._series: dict[SeriesKey, _Series] = {}
        self._lock = threading.Lock()
        self._last_prune = 0

    def born_at_zero(self, collectors: Collection[str]) -> None:
        """Name the collectors whose series appear with their first event (their traits)."""
        with self._lock:
            self._born_at_zero = frozenset(collectors)

    @property
    def window_seconds(self) -> float:
        return self._window / 1e9

    def pods(self, start_unix_nano: int) -> list[Attributes]:
        """Identity attributes of the pods whose series were observed since ``start``."""
        keys = ("k8s.pod.uid", "k8s.pod.name", "k8s.namespace.name")
        found: dict[str, Attributes] = {}
        with self._lock:
            for (_, attributes), series in self._series.items():
                have = dict(attributes)
                uid = have.get("k8s.pod.uid")
                if uid and series.last_seen >= start_unix_nano:
                    found[uid] = tuple((k, have[k]) for k in keys if k in have)
        return list(found.values())

    def wants(self, metric: str) -> bool:
        return metric in self._metrics

    def update(self, collection: PointCollection) -> None:
        """Record a collection (the sink interface the collector runners call)."""
        name, t = collection.collector, collection.time_unix_nano
        born = None
        if name in self._born_at_zero:
            with self._lock:
                born = self._previous.get(name)
                self._previous[name] = max(t, born or 0)
        observed = chain(((m, a, v) for block in collection.blocks  # no Point per value
                          for (m, a), v in zip(block.keys, block.values, strict=True)),
                         ((p.metric, p.attributes, p.value) for p in collection.points))
        self._record(observed, t, born)

    def record(self, points: Iterable, t: int, born_after: int | None = None) -> None:
        """Record points observed at ``t``; with ``born_after``, a new series was zero then."""
        self._record(((p.metric, p.attributes, p.value) for p in points), t, born_after)

    def _record(self, observed: Iterable, t: int, born_after: int | None) -> None:
        """Record (metric, attributes, value) triples observed at ``t``."""
        wanted = self._metrics
        with self._lock:
            for metric, attributes, raw in observed:
                name = metric.name
                if name not in wanted:
                    continue
                value = _storable(raw)
                if value is None:
                    continue
                key = (name, attributes)
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series(t, value)
                    if born_after is not None and born_after < t and _count(value):
                        series.times.insert(0, born_after)
                        series.values.insert(0, _zero(value))
                    continue
                if t >= series.last_seen:
                    series.last_seen = t
                    if not _same(value, series.values[-1]):
                        series.times.append(t)
                        series.values.append(value)
            if t - self._last_prune > self._window // 10:
                self._prune(t)

    def _prune(self, now: int) -> None:
        """Forget what no window can ask for any more (keeps each series' baseline)."""
        self._last_prune = now
        horizon = now - self._window
        for key in [k for k, s in self._series.items() if s.last_seen < horizon]:
            del self._series[key]
        for series in self._series.values():
            keep_from = series.index_at(horizon)
            if keep_from > 0:
                del series.times[:keep_from], series.values[:keep_from]

    def series_count(self) -> int:
        with self._lock:
            return len(self._series)

    def sample_count(self) -> int:
        with self._lock:
            return sum(len(s.times) for s in self._series.values())

    def windows(self, metric: str, match: Callable[[Attributes], bool], start_unix_nano: int,
                end_unix_nano: int) -> list[Window]:
        """Every series of ``metric`` whose attributes ``match``, at both ends of a window.

        A series first seen after ``start`` uses its first observation as the baseline:
        what it counted before that is not attributed to the window.
        """
        out = []
        with self._lock:
            for (name, attributes), series in self._series.items():
                if name != metric or not match(attributes):
                    continue
                last = series.index_at(end_unix_nano)
                if last < 0:
                    continue
                at_start = series.index_at(start_unix_nano)
                first = max(at_start, 0)
                base_time = start_unix_nano if at_start >= 0 else series.times[0]
                lo, hi = series.values[first], series.values[last]
                reset = _count(hi) < _count(lo)
                peak = max(_count(v) for v in series.values[first:last + 1])
                out.append(Window(metric, attributes, lo, hi, base_time,
                                  min(series.last_seen, end_unix_nano), reset, peak))
        return out

    def span(self, metric: str, match: Callable[[Attributes], bool], start_unix_nano: int,
             end_unix_nano: int) -> tuple[int, int] | None:
        """When the matching series changed inside the window: (just before the first
        change, the last change), or None if none did.

        A ratio over this span is the ratio of the burst, not diluted by the quiet parts of
        a wide window: the start is the change point before the first change (the previous
        observation of a busy series), so the burst's first increase is inside it.
        """
        first = last = None
        with self._lock:
            for (name, attributes), series in self._series.items():
                if name != metric or not match(attributes):
                    continue
                # the first change after the baseline (a series first seen inside the window
                # has its first observation as baseline, as in windows())
                i = max(series.index_at(start_unix_nano), 0) + 1
                j = series.index_at(end_unix_nano)
                if i > j:
                    continue
                first = series.times[i] if first is None else min(first, series.times[i])
                last = series.times[j] if last is None else max(last, series.times[j])
        return None if first is None or last is None else (first - 1, last)

    def increases(self, metric: str, match: Callable[[Attributes], bool], start_unix_nano: int,
                  end_unix_nano: int) -> list[Window]:
        return self.windows(metric, match, start_unix_nano, end_unix_nano)

    def now(self) -> int:
        return self._clock()
