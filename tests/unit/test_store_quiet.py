"""Quiet per-pod counters are held back until they move, then sent with a zero baseline."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.model import Collection, Kind, MetricDef, Point, Scope, attrs
from otel_netreceiver.runtime.store import SeriesStore

POD_COUNTER = MetricDef("t.pod.drops", Kind.COUNTER, "{packet}", "", scope=Scope.POD)
POD_GAUGE = MetricDef("t.pod.conns", Kind.GAUGE, "{connection}", "", scope=Scope.POD)
NODE_COUNTER = MetricDef("t.node.drops", Kind.COUNTER, "{packet}", "")
A = attrs({"k8s.pod.uid": "u1"})


def _cycle(store: SeriesStore, t: int, drops: int) -> None:
    store.update(Collection("podnet", (Point(POD_COUNTER, A, drops), Point(POD_GAUGE, A, 0),
                                       Point(NODE_COUNTER, (), 0)), t))


def _names(store: SeriesStore) -> set[str]:
    return {m.metric.name for m in store.snapshot().metrics}


def test_quiet_pod_counter_is_held_back_but_gauges_and_node_counters_are_not() -> None:
    store = SeriesStore(clock=lambda: 1)
    _cycle(store, 1_000, 0)
    assert _names(store) == {"t.pod.conns", "t.node.drops"}
    assert store.suppressed() == {"t.pod.drops": 1}


def test_first_move_carries_a_zero_baseline_at_the_previous_time_until_acked() -> None:
    store = SeriesStore(clock=lambda: 1)
    _cycle(store, 1_000, 0)
    _cycle(store, 2_000, 0)
    _cycle(store, 3_000, 5)
    snapshot = store.snapshot()
    point = snapshot.find("t.pod.drops").points[0]
    assert (point.value, point.time_unix_nano, point.baseline_time_unix_nano) == (5, 3_000, 2_000)
    # an export that failed does not ack: the baseline is offered again
    assert store.snapshot().find("t.pod.drops").points[0].baseline_time_unix_nano == 2_000
    store.ack_baselines(snapshot)
    _cycle(store, 4_000, 6)
    assert store.snapshot().find("t.pod.drops").points[0].baseline_time_unix_nano == 0
    # once it moved it stays exported, even if it never changes again
    _cycle(store, 5_000, 6)
    assert "t.pod.drops" in _names(store)


def test_a_series_first_seen_non_zero_is_exported_without_baseline() -> None:
    store = SeriesStore(clock=lambda: 1)
    _cycle(store, 1_000, 9)
    point = store.snapshot().find("t.pod.drops").points[0]
    assert point.value == 9 and point.baseline_time_unix_nano == 0


def test_suppression_can_be_switched_off() -> None:
    store = SeriesStore(clock=lambda: 1, suppress_quiet=False)
    _cycle(store, 1_000, 0)
    assert "t.pod.drops" in _names(store)


def test_the_wire_encoding_sends_the_zero_before_the_value() -> None:
    store = SeriesStore(clock=lambda: 1)
    _cycle(store, 1_000, 0)
    _cycle(store, 2_000, 5)
    body = WireEncoder({}).encode(store.snapshot())
    request = ExportMetricsServiceRequest.FromString(body)
    metric = next(m for m in request.resource_metrics[0].scope_metrics[0].metrics
                  if m.name == "t.pod.drops")
    points = [(dp.time_unix_nano, dp.as_int) for dp in metric.sum.data_points]
    assert points == [(1_000, 0), (2_000, 5)]
    assert {dp.start_time_unix_nano for dp in metric.sum.data_points} == {1}
