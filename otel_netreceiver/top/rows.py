"""Rates per pod between two store snapshots: the rows of ``top``, as a pure function.

The store's snapshots are cumulative (runtime/store.py); a rate is the change between the
agent's last two snapshots over the time between them. A counter's change is its value
minus the previous one while its start time is unchanged; a series that restarted, first
moved from zero (the store's zero baseline) or appeared after the previous snapshot counts
from zero; any other series missing from the previous snapshot is skipped rather than
turned into a rate of its whole lifetime. Histograms subtract bucket by bucket and report
the upper bound of the bucket that holds the 99th percentile (the kernel's buckets are
log2, so that is what the data can say).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from otel_netreceiver.model import Attributes, HistogramValue, Kind, Scope, SeriesPoint, Snapshot
from otel_netreceiver.top.columns import COLUMNS, P99, Column, Source

FINDINGS = "netreceiver.diagnosis.findings"
# attributes that name the row: left out of a detail's label
IDENTITY = frozenset(("k8s.pod.name", "k8s.namespace.name", "k8s.pod.uid", "netns.inode",
                      "netns.kind", "process.command"))
MAX_DETAILS = 40


@dataclass(frozen=True, slots=True)
class RowId:
    """Who a row is: a pod (by UID), the host namespace, a namespace no pod owns, the node."""

    kind: str  # pod | host | other | node
    key: str
    name: str
    namespace: str = ""


NODE_ROW = RowId("node", "node", "(node)")
HOST_ROW = RowId("host", "host", "(host netns)")


@dataclass(frozen=True, slots=True)
class Rate:
    """One moving series of a row (details pane, console summary), the row's identifying
    attributes left out."""

    metric: str
    attributes: Attributes
    per_second: float

    @property
    def label(self) -> str:
        shown = ",".join(f"{k}={v}" for k, v in self.attributes)
        return f"{self.metric}{{{shown}}}" if shown else self.metric

    @property
    def short(self) -> str:
        """metric{value,value}: the console summary's compact form."""
        shown = ",".join(v for _, v in self.attributes)
        return f"{self.metric}{{{shown}}}" if shown else self.metric


@dataclass(frozen=True, slots=True)
class TopRow:
    """One row: column values (None when no source exists for the row's scope), the top
    attribute value of columns that name one, every moving series, and active findings."""

    id: RowId
    values: tuple[tuple[str, float | None], ...]
    tops: tuple[tuple[str, str], ...] = ()
    details: tuple[Rate, ...] = ()
    findings: tuple[tuple[str, str], ...] = ()  # (rule, verdict)

    def value(self, key: str) -> float | None:
        return dict(self.values).get(key)


@dataclass(frozen=True, slots=True)
class TopView:
    """The rows between two snapshots and the columns worth showing for them."""

    time_unix_nano: int
    interval_s: float
    columns: tuple[Column, ...]
    rows: tuple[TopRow, ...] = field(default=())

    def as_dict(self) -> dict:
        """The node API's JSON document (docs/node-api.md, "GET /v1/top")."""
        return {
            "time_unix_nano": self.time_unix_nano, "interval_s": round(self.interval_s, 3),
            "columns": [{"key": c.key, "title": c.title, "unit": c.unit,
                         "priority": c.priority} for c in self.columns],
            "rows": [{"kind": r.id.kind, "key": r.id.key, "name": r.id.name,
                      "namespace": r.id.namespace, "values": dict(r.values),
                      "tops": dict(r.tops),
                      "details": [{"series": d.label, "per_second": d.per_second}
                                  for d in r.details],
                      "findings": [{"rule": rule, "verdict": verdict}
                                   for rule, verdict in r.findings]}
                     for r in self.rows],
        }


def fmt(value: float | None) -> str:
    """A rate for a 9-character cell: 0, 0.25, 12.5, 1234, 12.3k, 4.5M, or - (no source)."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    for limit, divisor, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if magnitude >= limit:
            return f"{value / divisor:.1f}{suffix}"
    if magnitude >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if magnitude >= 0.01 else f"{value:.4f}"


def row_of(attributes: Attributes, scope: Scope) -> RowId:
    """The row a series belongs to: node-scope series go to the node row."""
    if scope is Scope.NODE:
        return NODE_ROW
    a = dict(attributes)
    kind = a.get("netns.kind") or ("pod" if a.get("k8s.pod.uid") else "other")
    if kind == "pod":
        uid = a.get("k8s.pod.uid", "")
        return RowId("pod", uid, a.get("k8s.pod.name") or uid, a.get("k8s.namespace.name", ""))
    if kind == "host":
        return HOST_ROW
    inode = a.get("netns.inode", "?")
    return RowId("other", f"netns:{inode}", a.get("process.command") or f"netns {inode}")


def counter_delta(old: SeriesPoint | None, new: SeriesPoint, since: int) -> float | None:
    """The change of a counter since the previous snapshot (taken at ``since``), or None."""
    if old is not None and old.start_time_unix_nano == new.start_time_unix_nano:
        return new.value - old.value  # type: ignore[operator]
    if old is not None or new.baseline_time_unix_nano or new.start_time_unix_nano >= since:
        return float(new.value)  # type: ignore[arg-type]
    return None


def histogram_delta(old: SeriesPoint | None, new: SeriesPoint,
                    since: int) -> HistogramValue | None:
    value = new.value
    if not isinstance(value, HistogramValue):
        return None
    before = old.value if old is not None else None
    if (isinstance(before, HistogramValue) and before.bounds == value.bounds
            and old is not None and old.start_time_unix_nano == new.start_time_unix_nano):
        counts = tuple(n - o for n, o in zip(value.bucket_counts, before.bucket_counts,
                                             strict=True))
        return HistogramValue(value.bounds, counts, value.sum - before.sum,
                              value.count - before.count)
    if old is not None or new.baseline_time_unix_nano or new.start_time_unix_nano >= since:
        return value
    return None


def quantile(histograms: Iterable[HistogramValue], q: float) -> float | None:
    """Upper bound of the bucket holding quantile ``q`` of the merged histograms; None when
    empty. Histograms whose bounds differ from the first one's are left out."""
    bounds: tuple[float, ...] | None = None
    counts: list[int] = []
    for h in histograms:
        if bounds is None:
            bounds, counts = h.bounds, list(h.bucket_counts)
        elif h.bounds == bounds:
            counts = [a + b for a, b in zip(counts, h.bucket_counts, strict=True)]
    total = sum(counts)
    if bounds is None or total <= 0:
        return None
    seen, rank = 0, q * total
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return bounds[index] if index < len(bounds) else (bounds[-1] if bounds else None)
    return bounds[-1] if bounds else None


Deltas = dict[RowId, dict[tuple[str, Attributes], float | HistogramValue]]


def _deltas(previous: Snapshot, current: Snapshot) -> tuple[Deltas, dict[RowId, list]]:
    """Per row: the change of every counter and histogram; and the rows' active findings."""
    before = {(s.metric.name, p.attributes): p for s in previous.metrics for p in s.points}
    deltas: Deltas = defaultdict(dict)
    findings: dict[RowId, list] = defaultdict(list)
    since = previous.time_unix_nano
    for series in current.metrics:
        name, kind, scope = series.metric.name, series.metric.kind, series.metric.scope
        if series.metric.source == "self":
            continue  # the agent's own telemetry is not the node's traffic
        for point in series.points:
            if name == FINDINGS:
                a = dict(point.attributes)
                row = row_of(point.attributes, Scope.POD if "k8s.pod.uid" in a else Scope.NODE)
                findings[row].append((a.get("diagnosis.rule", ""), a.get("diagnosis.verdict", "")))
                continue
            row = deltas.setdefault(row_of(point.attributes, scope), {})  # gauges too
            old = before.get((name, point.attributes))
            change: float | HistogramValue | None = None
            if kind is Kind.COUNTER:
                change = counter_delta(old, point, since)
            elif kind is Kind.HISTOGRAM:
                change = histogram_delta(old, point, since)
            if change is not None:
                row[(name, point.attributes)] = change
    return deltas, findings


def chosen_sources(column: Column, present: Mapping[str, Scope], measured: Mapping[str, Scope],
                   scope: Scope) -> tuple[Source, ...]:
    """The sources a column reads for rows of ``scope``: its own when any is in the
    snapshot, else its fallback's (module docstring of columns.py); when neither is (the
    store holds back counters that never moved), the first group this node measures."""
    for known in (present, measured):
        for group in (column.sources, column.fallback):
            found = tuple(s for s in group if known.get(s.metric) is scope)
            if found:
                return found
    return ()


def _cell(column: Column, sources: tuple[Source, ...], series: Mapping, seconds: float
          ) -> tuple[float | None, str]:
    if not sources:
        return None, ""
    picked = [(attributes, change) for (name, attributes), change in series.items()
              if any(s.metric == name and s.matches(attributes) for s in sources)]
    if column.aggregate == P99:
        p99 = quantile((c for _, c in picked if isinstance(c, HistogramValue)), 0.99)
        return (None if p99 is None else p99 * column.scale), ""
    total, by_top = 0.0, defaultdict(float)
    for attributes, change in picked:
        if isinstance(change, HistogramValue):
            continue
        total += change
        if column.top_attribute:
            by_top[dict(attributes).get(column.top_attribute, "")] += change
    top = max(by_top.items(), key=lambda kv: kv[1], default=("", 0.0))
    return total / seconds * column.scale, top[0] if top[1] > 0 else ""


def _details(series: Mapping, seconds: float) -> tuple[Rate, ...]:
    rates = []
    for (name, attributes), change in series.items():
        if isinstance(change, HistogramValue) or change <= 0:
            continue
        kept = tuple((k, v) for k, v in attributes if k not in IDENTITY)
        rates.append(Rate(name, kept, change / seconds))
    rates.sort(key=lambda r: (-r.per_second, r.label))
    return tuple(rates[:MAX_DETAILS])


def top_view(previous: Snapshot, current: Snapshot, columns: tuple[Column, ...] = COLUMNS,
             measured: Mapping[str, Scope] | None = None) -> TopView:
    """Rows of every pod, namespace and the node between two snapshots of the store.

    ``measured`` names the metrics this node's working collectors produce (with their
    scope): a row gets 0, not "-", for a column whose series are all held back as quiet.
    """
    measured = measured or {}
    seconds = (current.time_unix_nano - previous.time_unix_nano) / 1e9
    if seconds <= 0:
        raise ValueError(f"snapshots out of order: the current one is {seconds:.3f} s after "
                         "the previous one")
    present = {s.metric.name: s.metric.scope for s in current.metrics}
    shown = tuple(c for c in columns if not c.optional
                  or any(s.metric in present or s.metric in measured
                         for s in c.sources + c.fallback))
    deltas, findings = _deltas(previous, current)
    rows = []
    for row in sorted(set(deltas) | set(findings) | {NODE_ROW},
                      key=lambda r: (r.kind, r.namespace, r.name)):
        scope = Scope.NODE if row == NODE_ROW else Scope.POD
        series = deltas.get(row, {})
        cells = {c.key: _cell(c, chosen_sources(c, present, measured, scope), series, seconds)
                 for c in shown}
        rows.append(TopRow(row, tuple((k, v) for k, (v, _) in cells.items()),
                           tuple((k, t) for k, (_, t) in cells.items() if t),
                           _details(series, seconds), tuple(sorted(set(findings.get(row, ()))))))
    return TopView(current.time_unix_nano, seconds, shown, tuple(rows))
