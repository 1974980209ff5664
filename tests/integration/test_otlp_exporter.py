"""The OTLP exporter against a real OTLP receiver (HTTP and gRPC) on loopback."""

from __future__ import annotations

import socket
import time

import pytest

from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.export.otlp import OtlpExporter
from otel_netreceiver.model import Collection, Kind, MetricDef, Point, attrs
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.otlp_sink import OtlpGrpcSink, OtlpHttpSink, resource_of

PKTS = MetricDef("t.packets", Kind.COUNTER, "{packet}", "packets")
RESOURCE = {"service.name": "otel-netreceiver", "service.instance.id": "node-1"}


def _snapshot(value: int = 7):
    store = SeriesStore()
    store.update(Collection("c", (Point(PKTS, attrs(i="eth0"), value),), time.time_ns()))
    return store.snapshot()


@pytest.fixture
def http_sink():
    sink = OtlpHttpSink()
    yield sink
    sink.close()


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_http_export_delivers_points_and_resource(http_sink, compression: str) -> None:
    exporter = OtlpExporter(OtlpConfig(endpoint=http_sink.endpoint, compression=compression,
                                       headers={"x-tenant": "t1"}), RESOURCE)
    result = exporter.export(_snapshot())
    exporter.shutdown()
    assert result.ok, result.error
    assert result.points == 1 and result.encoded_bytes > 0
    assert http_sink.latest_values() == {("t.packets", (("i", "eth0"),)): 7}
    assert resource_of(http_sink.requests[-1])["service.instance.id"] == "node-1"


def test_grpc_export_delivers_points_and_metadata() -> None:
    sink = OtlpGrpcSink()
    try:
        exporter = OtlpExporter(OtlpConfig(endpoint=sink.endpoint, protocol="grpc",
                                           headers={"X-Tenant": "t1"}), RESOURCE)
        result = exporter.export(_snapshot(9))
        exporter.shutdown()
    finally:
        sink.close()
    assert result.ok, result.error
    assert len(sink.requests) == 1
    metric = sink.requests[0].resource_metrics[0].scope_metrics[0].metrics[0]
    assert metric.sum.data_points[0].as_int == 9
    assert sink.metadata[0]["x-tenant"] == "t1"


def test_retryable_status_is_retried_within_the_deadline(http_sink) -> None:
    http_sink.status = 503
    exporter = OtlpExporter(OtlpConfig(endpoint=http_sink.endpoint, timeout=1.2), RESOURCE)
    started = time.monotonic()
    result = exporter.export(_snapshot())
    elapsed = time.monotonic() - started
    assert not result.ok and "503" in result.error
    assert http_sink.attempts >= 2  # retried
    assert elapsed < 2.5  # but bounded by the timeout


def test_permanent_error_is_not_retried(http_sink) -> None:
    http_sink.status = 400
    result = OtlpExporter(OtlpConfig(endpoint=http_sink.endpoint), RESOURCE).export(_snapshot())
    assert not result.ok and "HTTP 400" in result.error
    assert http_sink.attempts == 1


def test_refused_connection_fails_fast_and_never_raises() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exporter = OtlpExporter(OtlpConfig(endpoint=f"http://127.0.0.1:{port}", timeout=0.5), RESOURCE)
    result = exporter.export(_snapshot())
    assert not result.ok and "ConnectionError" in result.error
