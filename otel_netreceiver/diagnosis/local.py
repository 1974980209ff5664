"""The agent's own history as a diagnosis source (local mode).

Conditions are computed per evidence group: the ``group_by`` attributes of the signal
(and its ``match``); for ``diagnose`` the pod is the subject, so groups never mix pods.
Aggregates (Scope.ALL) carry only the grouping attributes, so an answer cannot name
another pod (docs/node-api.md).

A ratio is computed over the span in which its numerator moved (``History.span``): a burst
of retransmissions inside a long, otherwise healthy window keeps its ratio, so a wider
``--since`` cannot hide it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from otel_netreceiver.diagnosis.model import Condition, Evidence, Op, Question, Scope, Signal
from otel_netreceiver.history.store import History, Window
from otel_netreceiver.model import Attributes, HistogramValue


def _selector(signal: Signal, question: Question) -> Callable[[Attributes], bool]:
    want_uid, scope, namespace = question.pod_uid, signal.scope, question.namespace

    def match(attributes: Attributes) -> bool:
        if not signal.matches(attributes):
            return False
        have = dict(attributes)
        if scope is Scope.POD:
            return have.get("k8s.pod.uid") == want_uid
        if scope is Scope.HOST:
            return have.get("netns.kind") == "host"
        if scope is Scope.ALL and namespace:
            return have.get("k8s.namespace.name") == namespace
        return True

    return match


def _key(signal: Signal, attributes: Attributes) -> Attributes:
    keep = set(signal.group_by) | {k for k, _ in signal.match}
    return tuple((k, v) for k, v in attributes if k in keep)


def _grouped(signal: Signal, rows: Iterable[Window]) -> dict[Attributes, list[Window]]:
    groups: defaultdict[Attributes, list[Window]] = defaultdict(list)
    for row in rows:
        groups[_key(signal, row.attributes)].append(row)
    return groups


def quantile(q: float, bounds: tuple[float, ...], counts: list[float]) -> float:
    """Prometheus' histogram_quantile: linear within the bucket the rank falls in."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    rank, seen = q * total, 0.0
    for i, count in enumerate(counts):
        if seen + count >= rank and count > 0:
            lower = bounds[i - 1] if i > 0 else 0.0
            if i >= len(bounds):
                return bounds[-1]  # the overflow bucket: its lower bound, as Prometheus does
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def _bucket_deltas(rows: list[Window]) -> tuple[tuple[float, ...], list[float]] | None:
    bounds: tuple[float, ...] | None = None
    total: list[float] = []
    for row in rows:
        first, last = row.first, row.last
        if not isinstance(last, HistogramValue):
            continue
        base = first if isinstance(first, HistogramValue) and not row.reset \
            and first.bounds == last.bounds else None
        deltas = [c - (base.bucket_counts[i] if base else 0)
                  for i, c in enumerate(last.bucket_counts)]
        if bounds is None:
            bounds, total = last.bounds, deltas
        elif bounds == last.bounds:
            total = [a + b for a, b in zip(total, deltas, strict=True)]
    return (bounds, total) if bounds is not None else None


def _value(condition: Condition, rows: list[Window], seconds: float,
           denominators: dict[Attributes, float], key: Attributes) -> float | None:
    op = condition.op
    if op is Op.INCREASE:
        return sum(r.delta for r in rows)
    if op is Op.RATE:
        return sum(r.delta for r in rows) / seconds if seconds > 0 else None
    if op is Op.RATIO:
        below = denominators.get(key, 0.0)
        return sum(r.delta for r in rows) / below if below > 0 else None
    if op is Op.LEVEL:
        return sum(float(r.last) for r in rows if not isinstance(r.last, HistogramValue))
    if op is Op.PEAK:
        return sum(r.peak for r in rows if not isinstance(r.last, HistogramValue))
    if op is Op.GROWTH:
        first = sum(float(r.first) for r in rows if not isinstance(r.first, HistogramValue))
        last = sum(float(r.last) for r in rows if not isinstance(r.last, HistogramValue))
        return (last - first) / first if first > 0 else None
    buckets = _bucket_deltas(rows)  # Op.QUANTILE
    return quantile(condition.q, *buckets) if buckets and sum(buckets[1]) > 0 else None


class HistorySource:
    def __init__(self, history: History) -> None:
        self._history = history

    def _windows(self, signal: Signal, question: Question,
                 span: tuple[int, int] | None = None) -> list[Window]:
        start, end = span or (question.start_unix_nano, question.end_unix_nano)
        return self._history.windows(signal.metric, _selector(signal, question), start, end)

    def evaluate(self, condition: Condition, question: Question) -> list[Evidence]:
        signal = condition.signal
        if signal.raw or (condition.of is not None and condition.of.raw):
            return []  # a control-plane metric: only remote mode can read it
        denominators: dict[Attributes, float] = {}
        span = None
        if condition.of is not None:
            span = self._history.span(signal.metric, _selector(signal, question),
                                      question.start_unix_nano, question.end_unix_nano)
            if span is None:
                return []  # the numerator did not move: no ratio to speak of
            rows_of = self._windows(condition.of, question, span)
            for key, rows in _grouped(condition.of, rows_of).items():
                denominators[key] = sum(r.delta for r in rows)
        out = []
        for key, rows in _grouped(signal, self._windows(signal, question, span)).items():
            seconds = max(r.seconds for r in rows)
            value = _value(condition, rows, seconds or question.seconds, denominators, key)
            if value is not None:
                out.append(Evidence(signal.metric, signal.scope.value, key, value, seconds,
                                    condition.op.value))
        return out

    def pods(self, question: Question) -> list[Attributes]:
        found = self._history.pods(question.start_unix_nano)
        if question.namespace:
            found = [p for p in found if dict(p).get("k8s.namespace.name") == question.namespace]
        return found
