"""The SDK's instruments are the catalogue's "sdk" rows: same names, kinds, units, attributes.

The SDK cannot import the agent (it depends on opentelemetry-api only), so this test runs
its instruments through the OpenTelemetry SDK's in-memory reader and compares.
"""

from __future__ import annotations

import socket

import pytest

from otel_netreceiver.catalogue import by_source
from otel_netreceiver.model import Kind

metrics_sdk = pytest.importorskip("opentelemetry.sdk.metrics")
export = pytest.importorskip("opentelemetry.sdk.metrics.export")
sdk = pytest.importorskip("otel_netreceiver_sdk")


def test_sdk_instruments_match_the_catalogue(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_NETRECEIVER_CORRELATE", "explicit")  # no agent is asked
    reader = export.InMemoryMetricReader()
    provider = metrics_sdk.MeterProvider(metric_readers=[reader])
    instrumentor = sdk.NetReceiverInstrumentor()
    instrumentor.instrument(meter_provider=provider)
    try:
        with pytest.raises(OSError), socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            socket.create_connection(("127.0.0.1", port), timeout=1)  # refused
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("no-such-host.invalid", 80)
    finally:
        instrumentor.uninstrument()
    seen = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                keys = {k for p in m.data.data_points for k in p.attributes}
                seen[m.name] = (type(m.data).__name__, m.unit, keys)
    kinds = {Kind.HISTOGRAM: "Histogram", Kind.COUNTER: "Sum"}
    for row in by_source("sdk"):
        assert row.name in seen, f"the SDK did not record {row.name}"
        kind, unit, keys = seen[row.name]
        assert (kind, unit) == (kinds[row.kind], row.unit), row.name
        assert keys <= set(row.attributes), (row.name, keys)
