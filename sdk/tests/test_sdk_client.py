"""The correlation client against a fake agent on a real Unix socket and TCP port."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path

import pytest
from otel_netreceiver_sdk import SdkConfig, explain
from otel_netreceiver_sdk import client as client_module
from otel_netreceiver_sdk.client import CorrelationClient, CorrelationRequest, Endpoint
from sdk_support_agent import THROTTLED


def _reset_error(listener: socket.socket) -> ConnectionResetError:
    client = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.close()
    try:
        client.recv(10)
    except ConnectionResetError as exc:
        return exc
    finally:
        client.close()
    raise AssertionError("no reset")


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


def test_error_in_a_span_gets_the_agents_answer(instrument, telemetry, agent, listener):
    instrument(agent_socket=str(agent.socket_path))
    tracer = telemetry.tracer_provider.get_tracer("test")
    before = time.time_ns()
    with tracer.start_as_current_span("checkout"):
        exc = _reset_error(listener)
    path, content_type, body = agent.requests[0]
    assert (path, content_type) == ("/v1/correlate", "application/json")
    assert {k: body[k] for k in ("signal", "error_type", "transport", "phase",
                                 "window_seconds")} == {
        "signal": "socket", "error_type": "ECONNRESET", "transport": "tcp", "phase": "read",
        "window_seconds": 30}
    assert before <= body["at_unix_nano"] <= time.time_ns()
    (span,) = telemetry.spans.get_finished_spans()
    (event,) = [e for e in span.events if e.name == "netreceiver.correlation"]
    assert event.attributes["netreceiver.verdict"] == "dns_throttled_at_eni"
    assert event.attributes["error.type"] == "ECONNRESET"
    assert list(event.attributes["netreceiver.findings.rules"]) == ["dns.eni_linklocal"]
    evidence = json.loads(event.attributes["netreceiver.evidence"])
    assert evidence[0]["delta"] == 120 and evidence[0]["signal"] == "aws.ena.allowance.exceeded"
    (record,) = telemetry.logs.get_finished_logs()
    assert "ECONNRESET" in record.log_record.body
    assert record.log_record.attributes["netreceiver.verdict"] == "dns_throttled_at_eni"
    assert record.log_record.span_id == span.context.span_id
    explanation = explain(exc)  # the answer travelled with the exception: no new request
    assert len(agent.requests) == 1
    assert explanation.verdict == "dns_throttled_at_eni"
    assert explanation.agent.findings[0].evidence[0].attributes == (
        ("aws.ena.allowance", "linklocal"), ("network.interface.name", "eth0"))


def test_tcp_endpoint_and_cache(instrument, agent, listener):
    reporter = instrument(agent_socket="", agent_endpoint=agent.endpoint)
    _reset_error(listener)
    _reset_error(listener)  # the same kind within the cache TTL: answered from the cache
    assert len(agent.requests) == 1
    with pytest.raises(ConnectionRefusedError) as info:
        socket.create_connection(("127.0.0.1", _closed_port()))
    assert len(agent.requests) == 2  # another kind: asked
    assert reporter.explain(info.value).agent_status == "ok"


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_modes_explicit_and_sampled(instrument, agent, listener):
    reporter = instrument(agent_socket=str(agent.socket_path), mode="explicit")
    exc = _reset_error(listener)
    assert agent.requests == []
    assert explain(exc).verdict == "dns_throttled_at_eni"
    assert len(agent.requests) == 1
    reporter.config = SdkConfig(mode="sampled", sample_rate=0.0)
    _reset_error(listener)
    assert len(agent.requests) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


REQ = CorrelationRequest("dns", "timeout", "udp", "lookup", 1, 30)


def _client(endpoint: Endpoint | None, **fields) -> tuple[CorrelationClient, Clock]:
    clock = Clock()
    return CorrelationClient(endpoint, SdkConfig(**fields), clock=clock), clock


def test_cache_expires(agent):
    client, clock = _client(Endpoint("unix", path=str(agent.socket_path)), cache_ttl_s=5)
    assert client.correlate(REQ).status == "ok"
    assert client.correlate(REQ).status == "cached"
    clock.now += 6
    assert client.correlate(REQ).status == "ok"
    assert len(agent.requests) == 2


def test_breaker_opens_for_an_absent_agent_and_retries_after_cool_down(short_dir):
    client, clock = _client(Endpoint("unix", path=str(short_dir / "nobody.sock")),
                            breaker_failures=3, breaker_cooldown_s=30)
    statuses = [client.correlate(REQ).status for _ in range(5)]
    assert statuses == ["unavailable"] * 3 + ["circuit_open"] * 2
    assert client.requests_sent == 3
    clock.now += 31
    assert client.correlate(REQ).status == "unavailable"  # one try, then open again
    assert client.correlate(REQ).status == "circuit_open"
    assert client.requests_sent == 4


@pytest.mark.parametrize("mode", ["slow", "trickle"])
def test_deadline_bounds_a_slow_agent(agent, mode):
    agent.mode, agent.delay = mode, 3.0
    client, _ = _client(Endpoint("unix", path=str(agent.socket_path)), timeout_s=0.2)
    start = time.monotonic()
    result = client.correlate(REQ)
    elapsed = time.monotonic() - start
    assert result.status == "timeout", result
    assert elapsed < 1.0  # behaviour, not performance: the agent takes 3 s or more


@pytest.mark.parametrize(("mode", "status", "detail"), [
    ("error500", "http_error", "HTTP 500"),
    ("garbage", "invalid_answer", "body: not JSON"),
    ("wrong_shape", "invalid_answer", "answer.verdict: expected str, got int"),
])
def test_misbehaving_agent(agent, mode, status, detail):
    agent.mode = mode
    client, _ = _client(Endpoint("tcp", host="127.0.0.1", port=agent.tcp_port))
    result = client.correlate(REQ)
    assert result.status == status and detail in result.detail, result
    assert result.answer is None


def test_rate_limited_agent_opens_the_breaker_for_retry_after(agent):
    agent.mode = "throttle"
    client, clock = _client(Endpoint("unix", path=str(agent.socket_path)))
    assert client.correlate(REQ).status == "http_error"
    assert client.correlate(REQ).status == "circuit_open"
    clock.now += 8  # Retry-After: 7
    agent.mode = "ok"
    assert client.correlate(REQ).status == "ok"


def test_not_a_socket_and_internal_errors_never_raise(short_dir, agent, monkeypatch):
    plain = short_dir / "plain-file"
    plain.write_text("")
    client, _ = _client(Endpoint("unix", path=str(plain)))
    assert client.correlate(REQ).status == "unavailable"
    client, _ = _client(None)
    assert client.correlate(REQ).status == "no_agent"

    def broken(body: bytes) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(client_module, "parse_answer", broken)
    client, _ = _client(Endpoint("unix", path=str(agent.socket_path)))
    result = client.correlate(REQ)
    assert result.status == "internal_error" and "parser bug" in result.detail


def test_nothing_abnormal_with_lost_packets_keeps_the_sdks_verdict(instrument, agent):
    agent.answer = dict(THROTTLED, verdict="nothing_abnormal", findings=[])
    reporter = instrument(agent_socket=str(agent.socket_path), mode="explicit")
    err = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    reporter.dns_error("svc.example.test", err, 1.02)  # resolv.conf here: timeout:1
    explanation = explain(err)
    assert explanation.classification.error_type == "timeout"
    assert explanation.packets_lost is True
    assert explanation.verdict == "dns_packets_lost"
    assert "no answer came" in explanation.summary and "nothing abnormal" in \
        explanation.summary


def test_a_failing_exporter_inside_publish_does_not_correlate_again(telemetry, agent,
                                                                    listener, short_dir):
    """A log exporter that hits a socket error while the SDK publishes (an OTLP exporter
    whose collector is down, say) is counted, but starts no second correlation."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
    from otel_netreceiver_sdk import NetReceiverInstrumentor

    class CollectorDown(LogRecordExporter):
        def export(self, batch):
            with contextlib.suppress(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", _closed_port()), timeout=1)

        def shutdown(self):
            pass

        def force_flush(self, timeout_millis=0):
            return True

    loggers = LoggerProvider()
    loggers.add_log_record_processor(SimpleLogRecordProcessor(CollectorDown()))
    instrumentor = NetReceiverInstrumentor()
    instrumentor.instrument(config=SdkConfig(agent_socket=str(agent.socket_path),
                                             resolv_conf=short_dir / "none"),
                            env={}, meter_provider=telemetry.meter_provider,
                            logger_provider=loggers)
    try:
        _reset_error(listener)
    finally:
        instrumentor.uninstrument()
        loggers.shutdown()
    assert len(agent.requests) == 1
    counts = telemetry.counts("netreceiver.sdk.socket.errors")
    assert counts == {
        (("error.type", "ECONNRESET"), ("network.transport", "tcp"), ("phase", "read")): 1,
        (("error.type", "ECONNREFUSED"), ("network.transport", "tcp"), ("phase", "connect")): 1}


def test_doctor_reports_the_agents_health(agent, short_dir):
    import subprocess
    import sys

    resolv = short_dir / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.2\noptions ndots:5\n")
    env = {"OTEL_NETRECEIVER_AGENT_SOCKET": str(agent.socket_path), "K8S_POD_NAME": "web-1",
           "OTEL_NETRECEIVER_RESOLV_CONF": str(resolv), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    run = subprocess.run([sys.executable, "-m", "otel_netreceiver_sdk"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["agent"]["status"] == "ok" and "ip-10-0-1-23" in report["agent"]["detail"]
    assert report["resolver"]["nameservers"] == ["10.0.0.2"]
    assert report["resolver"]["ndots"] == 5
    assert report["identity"]["pod_name"] == "web-1"
    env["OTEL_NETRECEIVER_AGENT_SOCKET"] = str(short_dir / "absent.sock")
    run = subprocess.run([sys.executable, "-m", "otel_netreceiver_sdk"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert json.loads(run.stdout)["agent"]["status"] == "unavailable"
