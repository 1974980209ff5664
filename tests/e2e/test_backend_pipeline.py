"""What the OTLP → Prometheus translation really does in the test pipeline.

OpenTelemetry Python SDK → OTLP/HTTP → vmagent (-opentelemetry.usePrometheusNaming)
→ remote write → Prometheus 2.53. The names and labels asserted here were
observed on this pipeline (vmagent from Debian trixie's victoria-metrics
1.112.0), not derived from the specification: rules, dashboards and
otel_netreceiver.naming rely on them, so a change of translation must fail here
first. The first tests use the plain SDK (is the pipeline itself sound?); the
last two send the agent's own exporter output and check naming.py against it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.export.otlp import OtlpExporter
from otel_netreceiver.model import Collection, HistogramValue, Kind, MetricDef, Point, attrs
from otel_netreceiver.naming import prometheus_name
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.backends import Pipeline, WaitTimeout

pytestmark = pytest.mark.e2e

# Remote write drops delta points (docs/background.md, "OTLP into Prometheus and AMP"): the
# agent exports cumulative, so do the tests.
CUMULATIVE = {kind: AggregationTemporality.CUMULATIVE for kind in (
    Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter,
    ObservableGauge)}
# An explicit Resource (no SDK defaults merged in) keeps the observed label set exact.
SMOKE_RESOURCE = {"service.name": "otel-netreceiver", "service.instance.id": "node-a"}
ETH9 = {"network.interface.name": "eth9"}
ARRIVAL_TIMEOUT = 15.0  # observed: under 1.5 s from export to queryable


class _RecordingExporter(OTLPMetricExporter):
    """The SDK's reader ignores export results; keep them so a rejected export fails loudly."""

    def __init__(self, endpoint: str) -> None:
        session = requests.Session()
        session.trust_env = False  # straight to 127.0.0.1, whatever proxy the environment sets
        super().__init__(endpoint=endpoint, timeout=10, preferred_temporality=CUMULATIVE,
                         session=session)
        self.results: list[MetricExportResult] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000,
               **kwargs: object) -> MetricExportResult:
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self.results.append(result)
        return result


@contextmanager
def _sdk(endpoint: str, resource: Mapping[str, str]) -> Iterator[tuple[MeterProvider, _Flush]]:
    """A MeterProvider exporting only when flushed (no timer: one export per flush)."""
    exporter = _RecordingExporter(endpoint)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
    provider = MeterProvider(metric_readers=[reader], resource=Resource(dict(resource)))
    try:
        yield provider, _Flush(provider, exporter)
    finally:
        provider.shutdown()


class _Flush:
    """Export now and insist that vmagent accepted the request."""

    def __init__(self, provider: MeterProvider, exporter: _RecordingExporter) -> None:
        self._provider, self._exporter = provider, exporter

    def __call__(self) -> None:
        self._provider.force_flush(timeout_millis=10_000)
        assert self._exporter.results[-1:] == [MetricExportResult.SUCCESS], (
            f"OTLP export to vmagent failed: {self._exporter.results}")


def _arrived(pipeline: Pipeline, promql: str, count: int) -> list[dict]:
    """Wait until ``promql`` returns ``count`` series; on timeout, show vmagent's log."""
    try:
        return pipeline.prometheus.wait_for(promql, lambda r: len(r) >= count,
                                            timeout=ARRIVAL_TIMEOUT)
    except WaitTimeout as exc:
        raise WaitTimeout(f"{exc}\nvmagent log tail:\n{pipeline.vmagent.log_tail()}") from None


def _values_by_name(series: Sequence[dict]) -> dict[str, float]:
    return {s["metric"]["__name__"]: float(s["value"][1]) for s in series}


def _gauge(value: float,
           attributes: Mapping[str, str]) -> Callable[[CallbackOptions], list[Observation]]:
    """An observable-gauge callback reporting one fixed point."""
    def callback(_options: CallbackOptions) -> list[Observation]:
        return [Observation(value, dict(attributes))]
    return callback


def test_counter_gets_total_and_resource_attributes_become_labels(
        vmagent_pipeline: Pipeline) -> None:
    with _sdk(vmagent_pipeline.vmagent.otlp_metrics_url, SMOKE_RESOURCE) as (provider, flush):
        meter = provider.get_meter("onr.smoke", "1.0")
        meter.create_counter("onr.smoke.packets", unit="{packet}").add(42, ETH9)
        flush()
        [series] = _arrived(vmagent_pipeline,
                            'onr_smoke_packets_total{network_interface_name="eth9"}', 1)
    assert float(series["value"][1]) == 42
    # Observed: vmagent puts EVERY resource attribute on every series, dots → "_"
    # (as ADOT does with resource_to_telemetry_conversion). Unlike ADOT/Prometheus it
    # derives no job/instance from service.name/service.instance.id, writes no
    # target_info, and the instrumentation scope (name "onr.smoke") becomes no label.
    assert series["metric"] == {
        "__name__": "onr_smoke_packets_total",
        "network_interface_name": "eth9",
        "service_instance_id": "node-a",
        "service_name": "otel-netreceiver",
    }
    assert vmagent_pipeline.prometheus.query("target_info") == []


def test_gauge_units_1_and_s_become_ratio_and_seconds(vmagent_pipeline: Pipeline) -> None:
    with _sdk(vmagent_pipeline.vmagent.otlp_metrics_url, SMOKE_RESOURCE) as (provider, flush):
        meter = provider.get_meter("onr.smoke")
        meter.create_observable_gauge("onr.smoke.utilization", [_gauge(0.25, ETH9)], unit="1")
        meter.create_observable_gauge("onr.smoke.wait", [_gauge(1.5, ETH9)], unit="s")
        flush()
        series = _arrived(vmagent_pipeline, '{__name__=~"onr_smoke_.+"}', 2)
    assert _values_by_name(series) == {
        "onr_smoke_utilization_ratio": 0.25,  # gauge, unit "1" → _ratio
        "onr_smoke_wait_seconds": 1.5,  # unit "s" → _seconds
    }


def test_sum_suffixes_depend_on_monotonicity(vmagent_pipeline: Pipeline) -> None:
    with _sdk(vmagent_pipeline.vmagent.otlp_metrics_url, SMOKE_RESOURCE) as (provider, flush):
        meter = provider.get_meter("onr.smoke")
        meter.create_counter("onr.smoke.retransmits", unit="1").add(3, ETH9)
        meter.create_counter("onr.smoke.busy", unit="s").add(2.5, ETH9)
        meter.create_up_down_counter("onr.smoke.queued", unit="By").add(7, ETH9)
        flush()
        series = _arrived(vmagent_pipeline, '{__name__=~"onr_smoke_.+"}', 3)
    assert _values_by_name(series) == {
        "onr_smoke_retransmits_total": 3,  # counter, unit "1": no _ratio, only _total
        "onr_smoke_busy_seconds_total": 2.5,  # unit suffix before _total
        "onr_smoke_queued_bytes": 7,  # non-monotonic sum: a gauge, no _total
    }


# --- the agent's own exporter and naming.py against the same pipeline ---------------------

SHAPES = [
    (MetricDef("onr.smoke.packets", Kind.COUNTER, "{packet}", ""), 42),
    (MetricDef("onr.smoke.io", Kind.COUNTER, "By", ""), 7),
    (MetricDef("onr.smoke.util", Kind.GAUGE, "1", ""), 0.5),
    (MetricDef("onr.smoke.duration", Kind.GAUGE, "s", ""), 1.5),
    (MetricDef("onr.smoke.pct", Kind.GAUGE, "%", ""), 5),
    (MetricDef("node_net_ethtool", Kind.GAUGE, "", ""), 3),
]
LATENCY = MetricDef("onr.smoke.latency", Kind.HISTOGRAM, "s", "")
AGENT_RESOURCE = {"service.name": "otel-netreceiver", "service.instance.id": "node-a",
                  "k8s.node.name": "node-a"}


def _send_with_agent_exporter(endpoint: str) -> None:
    store = SeriesStore()
    points = [Point(d, attrs(ETH9), v) for d, v in SHAPES]
    points.append(Point(LATENCY, attrs(cpu="0"), HistogramValue((0.1, 1.0), (1, 2, 3), 2.0, 6)))
    store.update(Collection("smoke", tuple(points), time.time_ns()))
    result = OtlpExporter(OtlpConfig(endpoint=endpoint), AGENT_RESOURCE).export(store.snapshot())
    assert result.ok, result.error


def test_agent_names_and_resource_labels_arrive_as_naming_predicts(
        vmagent_pipeline: Pipeline) -> None:
    _send_with_agent_exporter(vmagent_pipeline.vmagent.otlp_base_url)
    for definition, value in SHAPES:
        name = prometheus_name(definition)
        [series] = _arrived(vmagent_pipeline, name, 1)
        labels = series["metric"]
        assert float(series["value"][1]) == value, name
        assert labels == {"__name__": name, "network_interface_name": "eth9",
                          "service_instance_id": "node-a", "k8s_node_name": "node-a",
                          "service_name": "otel-netreceiver"}


def test_agent_histograms_arrive_as_cumulative_buckets(vmagent_pipeline: Pipeline) -> None:
    prometheus, vmagent = vmagent_pipeline
    _send_with_agent_exporter(vmagent.otlp_base_url)
    base = prometheus_name(LATENCY)
    buckets = _arrived(vmagent_pipeline, f"{base}_bucket", 3)
    assert {b["metric"]["le"]: float(b["value"][1]) for b in buckets} == {
        "0.1": 1.0, "1": 3.0, "+Inf": 6.0}
    assert float(prometheus.query(f"{base}_count")[0]["value"][1]) == 6
    assert float(prometheus.query(f"{base}_sum")[0]["value"][1]) == 2.0
