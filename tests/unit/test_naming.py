"""OTLP → Prometheus names, as observed through vmagent in tests/e2e/test_backend_pipeline.py."""

from __future__ import annotations

import pytest

from otel_netreceiver.catalogue import CATALOGUE, metric
from otel_netreceiver.model import Kind, MetricDef
from otel_netreceiver.naming import prometheus_name, prometheus_series_names


@pytest.mark.parametrize(
    ("name", "kind", "unit", "expected"),
    [
        ("aws.ena.allowance.exceeded", Kind.COUNTER, "{packet}",
         "aws_ena_allowance_exceeded_total"),
        ("system.network.io", Kind.COUNTER, "By", "system_network_io_bytes_total"),
        ("netreceiver.collector.duration", Kind.GAUGE, "s",
         "netreceiver_collector_duration_seconds"),
        ("x.utilization", Kind.GAUGE, "1", "x_utilization_ratio"),
        ("x.rate", Kind.GAUGE, "By/s", "x_rate_bytes_per_second"),
        ("node_net_ethtool", Kind.GAUGE, "", "node_net_ethtool"),
        ("x.pct", Kind.GAUGE, "%", "x_pct_percent"),
        ("x.total", Kind.COUNTER, "", "x_total"),
    ],
)
def test_translation(name: str, kind: Kind, unit: str, expected: str) -> None:
    assert prometheus_name(MetricDef(name, kind, unit, "")) == expected


def test_histogram_series_names() -> None:
    h = MetricDef("x.latency", Kind.HISTOGRAM, "s", "")
    assert prometheus_series_names(h) == (
        "x_latency_seconds_bucket", "x_latency_seconds_sum", "x_latency_seconds_count")


def test_catalogue_names_are_unique_after_translation() -> None:
    names = [prometheus_name(m) for m in CATALOGUE.values()]
    assert len(names) == len(set(names))


def test_unknown_metric_error_names_the_catalogue() -> None:
    with pytest.raises(KeyError, match=r"catalogue\.py"):
        metric("no.such.metric")
