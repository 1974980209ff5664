"""The agent as a whole honours the OTEL_* variables through the shared settings resolver."""

from __future__ import annotations

import io
from pathlib import Path

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.export.console import ConsoleExporter
from otel_netreceiver.export.otlp import OtlpExporter
from otel_netreceiver.runtime.agent import Agent
from tests.support.otlp_sink import OtlpHttpSink, resource_of

FAKE_PROC = str(Path(__file__).parent.parent / "data" / "proc")
BASE = f"interval: 1s\njitter: 0\nproc_root: {FAKE_PROC}\nsys_root: /nonexistent\n" \
       "collectors:\n  ena:\n    enabled: false\n"


def _agent(text: str, env: dict[str, str]) -> Agent:
    return Agent(load_text(text, "test.yaml", env), env, stream=io.StringIO(),
                 metadata=InstanceMetadata())


def test_signal_endpoint_and_service_name_from_the_environment_reach_the_collector() -> None:
    sink = OtlpHttpSink()
    env = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{sink.endpoint}/v1/metrics",
           "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "none",
           "OTEL_SERVICE_NAME": "a", "OTEL_RESOURCE_ATTRIBUTES": "service.name=b,team=net"}
    agent = _agent(BASE, env)
    agent.start()
    try:
        assert sink.wait_for(lambda values: bool(values))
    finally:
        agent.stop(flush=False)
        sink.close()
    resource = resource_of(sink.requests[-1])
    assert resource["service.name"] == "a" and resource["team"] == "net"


def test_metrics_exporter_none_turns_otlp_metrics_off_and_the_console_on() -> None:
    agent = _agent(BASE + "exporters:\n  otlp:\n    endpoint: http://127.0.0.1:9\n",
                   {"OTEL_METRICS_EXPORTER": "none"})
    agent._start_exporters(agent.loaded.config)
    try:
        kinds = {type(e) for e in agent.exporters}
    finally:
        agent._stop_exporters()
    assert OtlpExporter not in kinds and ConsoleExporter in kinds


def test_the_logs_endpoint_reaches_the_diagnosis_findings() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
           "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:9/custom/logs"}
    agent = _agent(BASE, env)
    agent.build_collectors_only()
    try:
        statuses = {s.name: s.reason for s in agent.probes()}
    finally:
        for runner in agent.runners.values():
            runner.collector.close()
    assert "log records to http://127.0.0.1:9/custom/logs" in statuses["diagnosis"]


def test_a_missing_certificate_file_is_reported_not_fatal(caplog) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:9",
           "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}
    agent = _agent(BASE, env)
    agent.build_collectors_only()
    agent._start_exporters(agent.loaded.config)
    try:
        statuses = {s.name: s.reason for s in agent.probes()}
        kinds = {type(e) for e in agent.exporters}
    finally:
        agent._stop_exporters()
        for runner in agent.runners.values():
            runner.collector.close()
    assert OtlpExporter not in kinds
    assert "/nonexistent/ca.pem" in statuses["diagnosis"]
    assert "OTLP metrics export unavailable: certificate /nonexistent/ca.pem" in caplog.text
