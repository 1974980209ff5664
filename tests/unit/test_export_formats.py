"""OTLP encoding and Prometheus text rendering of the same snapshot."""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.export.prometheus import render
from otel_netreceiver.model import Collection, HistogramValue, Kind, MetricDef, Point, attrs
from otel_netreceiver.runtime.store import SeriesStore

PKTS = MetricDef("t.packets", Kind.COUNTER, "{packet}", "packets")
LEVEL = MetricDef("t.level", Kind.GAUGE, "By", "level")
LAT = MetricDef("t.latency", Kind.HISTOGRAM, "s", "latency")


def _snapshot():
    store = SeriesStore(clock=lambda: 500)
    store.update(Collection("c", (
        Point(PKTS, attrs({"network.interface.name": "eth0"}), 2**64 - 1),
        Point(PKTS, attrs({"network.interface.name": "eth1"}), 12),
        Point(LEVEL, (), 1.5),
        Point(LAT, attrs(cpu="0"), HistogramValue((0.001, 0.01), (3, 2, 1), 0.05, 6)),
    ), 1_000))
    return store.snapshot()


def _roundtrip() -> ExportMetricsServiceRequest:
    body = WireEncoder({"service.name": "otel-netreceiver"}).encode(_snapshot())
    return ExportMetricsServiceRequest.FromString(body)


def test_otlp_counter_is_cumulative_monotonic_with_start_time() -> None:
    metrics = {m.name: m for m in _roundtrip().resource_metrics[0].scope_metrics[0].metrics}
    counter = metrics["t.packets"]
    assert counter.unit == "{packet}"
    assert counter.sum.is_monotonic
    assert counter.sum.aggregation_temporality == (
        metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE)
    by_iface = {dp.attributes[0].value.string_value: dp for dp in counter.sum.data_points}
    assert by_iface["eth1"].as_int == 12
    assert by_iface["eth1"].start_time_unix_nano == 500
    assert by_iface["eth1"].time_unix_nano == 1_000
    # u64 kernel counters beyond int64 are sent as doubles rather than wrapped negative
    assert by_iface["eth0"].WhichOneof("value") == "as_double"
    assert by_iface["eth0"].as_double == float(2**64 - 1)


def test_otlp_gauge_and_histogram() -> None:
    rm = _roundtrip().resource_metrics[0]
    assert {kv.key: kv.value.string_value for kv in rm.resource.attributes} == {
        "service.name": "otel-netreceiver"}
    assert rm.scope_metrics[0].scope.name == "otel_netreceiver"
    metrics = {m.name: m for m in rm.scope_metrics[0].metrics}
    assert metrics["t.level"].unit == "By" and metrics["t.level"].description == "level"
    assert metrics["t.level"].gauge.data_points[0].as_double == 1.5
    assert metrics["t.level"].gauge.data_points[0].time_unix_nano == 1_000
    hist = metrics["t.latency"].histogram.data_points[0]
    assert list(hist.explicit_bounds) == [0.001, 0.01]
    assert list(hist.bucket_counts) == [3, 2, 1]
    assert (hist.count, hist.sum) == (6, 0.05)
    assert [(kv.key, kv.value.string_value) for kv in hist.attributes] == [("cpu", "0")]
    assert metrics["t.latency"].histogram.aggregation_temporality == (
        metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE)


def test_prometheus_text() -> None:
    text = render(_snapshot(), {"service.name": "otel-netreceiver"})
    lines = text.splitlines()
    assert 'target_info{service_name="otel-netreceiver"} 1' in lines
    assert "# TYPE t_packets_total counter" in lines
    assert 't_packets_total{network_interface_name="eth1"} 12' in lines
    assert "t_level_bytes 1.5" in lines
    assert 't_latency_seconds_bucket{cpu="0",le="0.001"} 3' in lines
    assert 't_latency_seconds_bucket{cpu="0",le="0.01"} 5' in lines  # cumulative buckets
    assert 't_latency_seconds_bucket{cpu="0",le="+Inf"} 6' in lines
    assert 't_latency_seconds_count{cpu="0"} 6' in lines


def test_wire_encoding_has_no_unknown_or_lost_bytes() -> None:
    """protobuf re-serializes the parsed request to the same length: every byte was a known field.

    (Not byte-identical: protobuf writes fields in number order, the encoder writes a data
    point's attributes first; both are valid wire format.)
    """
    body = WireEncoder({"service.name": "otel-netreceiver"}).encode(_snapshot())
    assert len(ExportMetricsServiceRequest.FromString(body).SerializeToString()) == len(body)


def test_attribute_cache_follows_live_series() -> None:
    encoder = WireEncoder({})
    encoder.encode(_snapshot())
    # eth0, eth1 and () (histogram points are not cached)
    assert {held[0] for kind in encoder._prefixes for held in kind.values()} == {
        attrs({"network.interface.name": "eth0"}), attrs({"network.interface.name": "eth1"}), ()}
    empty = SeriesStore(clock=lambda: 1)
    encoder.encode(empty.snapshot())
    assert encoder._prefixes == ({}, {})  # gone series free their cached bytes
