"""Differential: our metrics exporter and the OpenTelemetry SDK's OTLPMetricExporter decide alike.

Both are pointed at the same real OTLP sink (HTTP or gRPC on loopback) scripted to
fail in the same way, and must make the same number of attempts with the same
outcome. A server delay far past the deadline shows that the delay was read
(otherwise both back off about a second and retry). One difference is kept on
purpose and asserted as such: RESOURCE_EXHAUSTED without RetryInfo, which the OTLP
specification says not to retry and the SDK retries.
"""

from __future__ import annotations

import time

import pytest

from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.export.otlp import OtlpExporter
from otel_netreceiver.model import Collection, Kind, MetricDef, Point, attrs
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.otlp_sink import OtlpGrpcSink, OtlpHttpSink

sdk_http = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.metric_exporter")
sdk_grpc = pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.metric_exporter")

PKTS = MetricDef("t.packets", Kind.COUNTER, "{packet}", "packets")
TIMEOUT = 4.0


def _ours(protocol: str, endpoint: str) -> bool:
    store = SeriesStore()
    store.update(Collection("c", (Point(PKTS, attrs(i="eth0"), 1),), time.time_ns()))
    exporter = OtlpExporter(OtlpConfig(endpoint=endpoint, protocol=protocol, timeout=TIMEOUT),
                            {"service.name": "t"})
    try:
        return exporter.export(store.snapshot()).ok
    finally:
        exporter.shutdown()


def _sdk_data():  # type: ignore[no-untyped-def]
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    MeterProvider(metric_readers=[reader]).get_meter("t").create_counter("c").add(1)
    return reader.get_metrics_data()


def _sdk(protocol: str, endpoint: str) -> bool:
    from opentelemetry.sdk.metrics.export import MetricExportResult

    if protocol == "grpc":
        exporter = sdk_grpc.OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=TIMEOUT)
    else:
        exporter = sdk_http.OTLPMetricExporter(endpoint=endpoint + "/v1/metrics", timeout=TIMEOUT)
    try:
        return exporter.export(_sdk_data()) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()


def _run(side, protocol: str, script: list) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
    sink = OtlpGrpcSink() if protocol == "grpc" else OtlpHttpSink()
    sink.script = list(script)
    try:
        ok = side(protocol, sink.endpoint)
    finally:
        sink.close()
    return sink.attempts, ok


HTTP_CASES = {
    "429 Retry-After 0, then OK": ([(429, {"Retry-After": "0"})], (2, True)),
    "429 Retry-After past the deadline": ([(429, {"Retry-After": "3600"})], (1, False)),
    "503 without Retry-After, then OK": ([(503, {})], (2, True)),
    "400": ([(400, {})], (1, False)),
}
GRPC_CASES = {
    "UNAVAILABLE with RetryInfo 0, then OK": ([("UNAVAILABLE", 0.0)], (2, True)),
    "UNAVAILABLE with RetryInfo past the deadline": ([("UNAVAILABLE", 3600.0)], (1, False)),
    "RESOURCE_EXHAUSTED with RetryInfo 0, then OK": ([("RESOURCE_EXHAUSTED", 0.0)], (2, True)),
    "INVALID_ARGUMENT": ([("INVALID_ARGUMENT", None)], (1, False)),
}


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_http_same_decisions_as_the_sdk(case: str) -> None:
    script, expected = HTTP_CASES[case]
    assert _run(_ours, "http/protobuf", script) == expected
    assert _run(_sdk, "http/protobuf", script) == expected


@pytest.mark.parametrize("case", list(GRPC_CASES))
def test_grpc_same_decisions_as_the_sdk(case: str) -> None:
    script, expected = GRPC_CASES[case]
    assert _run(_ours, "grpc", script) == expected
    assert _run(_sdk, "grpc", script) == expected


def test_resource_exhausted_without_retry_info_follows_the_spec_not_the_sdk() -> None:
    """OTLP spec: RESOURCE_EXHAUSTED is retryable only if the server signals recovery."""
    script = [("RESOURCE_EXHAUSTED", None)]
    assert _run(_ours, "grpc", script) == (1, False)
    assert _run(_sdk, "grpc", script) == (2, True)  # the SDK retries it regardless
