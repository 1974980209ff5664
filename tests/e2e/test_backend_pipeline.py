"""What the OTLP → Prometheus translation really does, checked against naming.py.

The rules, dashboards and docs use naming.prometheus_name(); this test sends one
metric of each shape through the real vmagent into a real Prometheus and checks
that the names and labels that arrive are exactly the ones naming.py predicts.
"""

from __future__ import annotations

import time

import pytest

from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.export.otlp import OtlpExporter
from otel_netreceiver.model import Collection, HistogramValue, Kind, MetricDef, Point, attrs
from otel_netreceiver.naming import prometheus_name
from otel_netreceiver.runtime.store import SeriesStore

pytestmark = pytest.mark.e2e

SHAPES = [
    (MetricDef("onr.smoke.packets", Kind.COUNTER, "{packet}", ""), 42),
    (MetricDef("onr.smoke.io", Kind.COUNTER, "By", ""), 7),
    (MetricDef("onr.smoke.util", Kind.GAUGE, "1", ""), 0.5),
    (MetricDef("onr.smoke.duration", Kind.GAUGE, "s", ""), 1.5),
    (MetricDef("onr.smoke.pct", Kind.GAUGE, "%", ""), 5),
    (MetricDef("node_net_ethtool", Kind.GAUGE, "", ""), 3),
]
LATENCY = MetricDef("onr.smoke.latency", Kind.HISTOGRAM, "s", "")
RESOURCE = {"service.name": "otel-netreceiver", "service.instance.id": "node-a",
            "k8s.node.name": "node-a"}


def _send(endpoint: str) -> None:
    store = SeriesStore()
    points = [Point(d, attrs({"network.interface.name": "eth9"}), v) for d, v in SHAPES]
    points.append(Point(LATENCY, attrs(cpu="0"), HistogramValue((0.1, 1.0), (1, 2, 3), 2.0, 6)))
    store.update(Collection("smoke", tuple(points), time.time_ns()))
    result = OtlpExporter(OtlpConfig(endpoint=endpoint), RESOURCE).export(store.snapshot())
    assert result.ok, result.error


def test_names_units_and_resource_labels_arrive_as_naming_predicts(vmagent_pipeline) -> None:
    prometheus, vmagent = vmagent_pipeline
    _send(vmagent.otlp_base_url)
    for definition, value in SHAPES:
        name = prometheus_name(definition)
        result = prometheus.wait_for(name, lambda r: bool(r), timeout=20)
        labels = result[0]["metric"]
        assert float(result[0]["value"][1]) == value, name
        assert labels["network_interface_name"] == "eth9"
        # vmagent copies every resource attribute onto every series (ADOT does the same
        # with resource_to_telemetry_conversion); it adds no job/instance labels
        assert labels["service_instance_id"] == "node-a"
        assert labels["k8s_node_name"] == "node-a"
        assert labels["service_name"] == "otel-netreceiver"
        assert "job" not in labels and "instance" not in labels


def test_histograms_arrive_as_cumulative_buckets(vmagent_pipeline) -> None:
    prometheus, vmagent = vmagent_pipeline
    _send(vmagent.otlp_base_url)
    base = prometheus_name(LATENCY)
    buckets = prometheus.wait_for(f"{base}_bucket", lambda r: len(r) == 3, timeout=20)
    assert {b["metric"]["le"]: float(b["value"][1]) for b in buckets} == {
        "0.1": 1.0, "1": 3.0, "+Inf": 6.0}
    assert float(prometheus.query(f"{base}_count")[0]["value"][1]) == 6
    assert float(prometheus.query(f"{base}_sum")[0]["value"][1]) == 2.0
