"""The agent as a whole, in-process: threads, export loop, pull endpoint, hot reload."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import requests

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_file, load_text
from otel_netreceiver.model import Collection, ProbeStatus
from otel_netreceiver.runtime.agent import Agent
from otel_netreceiver.runtime.reload import ConfigReloader
from otel_netreceiver.runtime.scheduler import CollectorRunner
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.otlp_sink import OtlpHttpSink

FAKE_PROC = str(Path(__file__).parent.parent / "data" / "proc")
ETH0_RX = ("system.network.io", (("network.interface.name", "eth0"),
                                 ("network.io.direction", "receive")))


def _config(endpoint: str, extra: str = "") -> str:
    return f"""
interval: 1s
jitter: 0
proc_root: {FAKE_PROC}
sys_root: /nonexistent
collectors:
  ena:
    enabled: false
{extra}
exporters:
  otlp:
    endpoint: {endpoint}
    timeout: 1s
  prometheus:
    enabled: true
    port: 0
"""


@pytest.fixture
def sink():
    s = OtlpHttpSink()
    yield s
    s.close()


def _agent(text: str, env: dict | None = None) -> Agent:
    return Agent(load_text(text, "test.yaml", env or {}), env or {}, stream=io.StringIO(),
                 metadata=InstanceMetadata())


def test_collects_exports_and_serves_pull_endpoint(sink) -> None:
    agent = _agent(_config(sink.endpoint))
    agent.start()
    try:
        assert sink.wait_for(lambda v: v.get(ETH0_RX) == 9876543210)
        values = sink.latest_values()
        assert values[("netreceiver.collector.cycles", (("collector", "netdev"),))] >= 1
        base = f"http://127.0.0.1:{agent.pull.port}"
        text = requests.get(f"{base}/metrics", timeout=5).text
        assert ('system_network_io_bytes_total{network_interface_name="eth0",'
                'network_io_direction="receive"} 9876543210') in text
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
    finally:
        agent.stop()


def test_console_only_when_no_endpoint() -> None:
    stream = io.StringIO()
    # the fake /proc never moves: its cumulative values are printed with totals on
    cfg = load_text(f"interval: 1s\nproc_root: {FAKE_PROC}\nsys_root: /nonexistent\n"
                    "exporters: {console: {totals: true}}\n")
    agent = Agent(cfg, {}, stream=stream, metadata=InstanceMetadata())
    agent.start()
    try:
        deadline = time.monotonic() + 5
        while "system.network.io" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        agent.stop(flush=False)
    out = stream.getvalue()
    assert "── otel-netreceiver on" in out
    assert "network.interface.name=eth0 network.io.direction=receive" in out
    assert "9,876,543,210" in out


def test_backend_outage_keeps_collecting_and_resumes_with_totals(sink) -> None:
    sink.status = 503
    agent = _agent(_config(sink.endpoint))
    agent.start()
    try:
        time.sleep(2.5)
        failures = agent.counters.exporters["otlp"].failures
        assert failures >= 1
        assert agent.runners["netdev"].stats.cycles >= 2  # collection went on
        sink.status = 200
        assert sink.wait_for(lambda v: v.get(ETH0_RX) == 9876543210, timeout=6)
        values = sink.latest_values()
        assert values[("netreceiver.export.failures", (("exporter", "otlp"),))] >= failures
    finally:
        agent.stop()


class _Boom:
    name = "boom"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> Collection:
        self.calls += 1
        raise RuntimeError("kernel said no")

    def probe(self) -> ProbeStatus:
        return ProbeStatus(self.name, True)

    def close(self) -> None:
        pass


def test_failing_collector_is_counted_and_backs_off() -> None:
    runner = CollectorRunner(_Boom(), SeriesStore(), interval=1.0, jitter=0.0)
    assert runner.run_once() is False
    assert runner.stats.errors == 1 and "kernel said no" in runner.stats.last_error
    assert runner.backoff() == 1.0
    runner.run_once()
    runner.run_once()
    assert runner.backoff() == 4.0  # 1 s, then 2 s, then 4 s
    for _ in range(10):
        runner.run_once()
    assert runner.backoff() == 10.0  # capped at ten intervals


class _Counting:
    name = "counting"

    def __init__(self) -> None:
        self.times: list[float] = []

    def collect(self) -> Collection:
        self.times.append(time.monotonic())
        return Collection("counting", (), time.time_ns())

    def probe(self) -> ProbeStatus:
        return ProbeStatus(self.name, True)

    def close(self) -> None:
        pass


def test_runner_keeps_a_steady_period_after_its_random_phase() -> None:
    import random

    collector = _Counting()
    runner = CollectorRunner(collector, SeriesStore(), interval=0.2, jitter=0.5,
                             rng=random.Random(7))
    runner.start()
    time.sleep(1.35)
    runner.stop()
    gaps = [b - a for a, b in zip(collector.times[1:], collector.times[2:], strict=False)]
    assert len(collector.times) >= 6
    assert all(abs(g - 0.2) < 0.05 for g in gaps), gaps  # the phase shifts, the period holds


def test_reload_applies_valid_and_rejects_invalid(sink, tmp_path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(_config(sink.endpoint))
    agent = Agent(load_file(path), {}, stream=io.StringIO(), metadata=InstanceMetadata())
    agent.start()
    reloader = ConfigReloader(agent, str(path), {}, poll_interval=0.2)
    reloader.start()
    try:
        assert sink.wait_for(lambda v: ETH0_RX in v)
        path.write_text(_config(sink.endpoint) + "bogus_key: 1\n")
        time.sleep(1.0)
        assert agent.counters.reloads["rejected"] == 1
        assert "netdev" in agent.runners  # the last good configuration still runs
        path.write_text(_config(sink.endpoint, "  netdev:\n    enabled: false"))
        assert sink.wait_for(lambda v: ETH0_RX not in v, timeout=6)  # series gone within a cycle
        assert agent.counters.reloads["applied"] == 1
        assert "netdev" not in agent.runners
    finally:
        reloader.stop()
        agent.stop()


def _ask(path: Path) -> dict:
    import http.client
    import json
    import socket

    class Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(path))

    conn = Unix("agent", timeout=5)
    conn.request("POST", "/v1/correlate", body=b"{\"signal\": \"socket\"}")
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    return json.loads(resp.read())


def test_reload_moves_the_node_api_and_a_bad_reload_keeps_it(tmp_path) -> None:
    first, second = tmp_path / "a.sock", tmp_path / "b.sock"
    path = tmp_path / "agent.yaml"
    # the real /proc: callers of the socket are named through /proc/<pid>/cgroup
    base = "interval: 1s\ncollectors: {ena: {enabled: false}, ebpf: {enabled: false}, " \
           "podnet: {enabled: false}}\nexporters: {console: {enabled: false}}\n"
    path.write_text(base + f"correlation:\n  socket: {first}\n")
    agent = Agent(load_file(path), {}, stream=io.StringIO(), metadata=InstanceMetadata())
    agent.start()
    reloader = ConfigReloader(agent, str(path), {}, poll_interval=0.2)
    reloader.start()
    try:
        assert _ask(first)["caller"] == {"kind": "host"}
        path.write_text(base + f"correlation:\n  socket: {second}\n  rate: 0\n")
        time.sleep(1.0)
        assert agent.counters.reloads["rejected"] == 1  # rate: must be at least 0.1
        assert _ask(first)["verdict"] == "nothing_abnormal"  # still served
        path.write_text(base + f"correlation:\n  socket: {second}\n")
        deadline = time.monotonic() + 5
        while not second.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _ask(second)["caller"] == {"kind": "host"}
        assert not first.exists()  # the old listener is gone with its socket
        probe = next(p for p in agent.probes() if p.name == "nodeapi")
        assert probe.active and str(second) in probe.reason
    finally:
        reloader.stop()
        agent.stop()


def test_podnet_and_the_history_sampler_share_one_namespace_walk(tmp_path) -> None:
    """The real /proc: one walk serves the per-pod collector and every sampler cycle of the
    interval; a reload keeps the resolver, and a shorter interval shortens what a walk serves."""
    text = ("interval: 60s\ncollectors: {ena: {enabled: false}, ebpf: {enabled: false}, "
            "nodenet: {enabled: false}, netdev: {enabled: false}}\n"
            "exporters: {console: {enabled: false}}\n"
            f"correlation:\n  socket: {tmp_path / 'api.sock'}\n")
    agent = Agent(load_text(text, "test.yaml", {}), {}, stream=io.StringIO(),
                  metadata=InstanceMetadata())
    agent.build_collectors_only()
    sampler = agent.correlation.sampler if agent.correlation is not None else None
    assert sampler is not None
    try:
        resolver = agent.netns
        podnet = agent.runners["podnet"].collector.collect()
        assert resolver.walks == 1 and not podnet.errors  # podnet walked the agent's resolver
        for _ in range(5):  # five 1 s history cycles of the same interval
            sampled = sampler.collector.collect()
        assert resolver.walks == 1 and not sampled.errors
        resolver.max_age = 0.0  # every call walks: the sampler's call shows it is the same one
        sampler.collector.collect()
        assert resolver.walks == 2
        host = [p for p in sampled.points if dict(p.attributes).get("netns.kind") == "host"]
        assert host  # the sampler read the node's namespace from the shared walk
        agent.apply(load_text(text.replace("60s", "2s"), "test.yaml", {}))
        assert agent.netns is resolver and resolver.max_age == pytest.approx(1.8)
    finally:
        agent.stop(flush=False)
