"""Signals on the real command, and crashes inside the threaded agent.

SIGTERM must flush and exit within a pod's termination grace period even when
the backend hangs (the final export has the same deadline as every other).
A collector whose cycle raises, or whose cycle dies with an exception that
would end its thread, is logged, counted, and run again after its backoff,
while the other collectors keep their period; an export cycle that raises
does not end the export loop.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.model import Collection, ProbeStatus
from otel_netreceiver.runtime.agent import Agent
from otel_netreceiver.runtime.scheduler import CollectorRunner
from tests.soak.test_backend_faults import HangingListener
from tests.support.otlp_sink import OtlpHttpSink
from tests.support.soak import record, scaled, wait_until

pytestmark = pytest.mark.soak

ROOT = Path(__file__).parent.parent.parent
FAKE_PROC = str(ROOT / "tests" / "data" / "proc")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_EC2_METADATA_DISABLED": "true"}
GRACE = 30.0  # Kubernetes' default terminationGracePeriodSeconds


def test_sigterm_with_a_hanging_backend_exits_within_the_grace_period(tmp_path) -> None:
    listener = HangingListener(0)
    port = listener.port
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"interval: 1s\nproc_root: {FAKE_PROC}\nsys_root: /nonexistent\n"
                   "collectors:\n  ena: {enabled: false}\n  ebpf: {enabled: false}\n"
                   f"exporters:\n  otlp: {{endpoint: 'http://127.0.0.1:{port}', timeout: 3s}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "otel_netreceiver", "run", "-c", str(cfg)],
                            env=ENV, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(listener.accepted) >= 2, 20)  # exports are hanging
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=GRACE)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    record("SIGTERM, hanging backend", exit_s=took, export_timeout_s=3.0, grace_s=GRACE)
    assert proc.returncode == 0, err
    assert "stopped after a final export" in err
    # the export in flight (<= 3 s) plus the final flush (<= 3 s), far inside the grace period
    assert took < 2 * 3.0 + 3.0, took


class _Flaky:
    """A collector that fails in one of two ways for a while, then works again."""

    def __init__(self, name: str, failures: int, how: str) -> None:
        self.name, self._failures, self._how = name, failures, how
        self.calls: list[float] = []

    def collect(self) -> Collection:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self._failures:
            if self._how == "thread-death":
                # a BaseException: before the runtime's supervision this ended the thread
                raise SystemExit(f"{self.name} pulled the thread down")
            raise RuntimeError(f"{self.name} hit a kernel surprise")
        return Collection(self.name, (), time.time_ns())

    def probe(self) -> ProbeStatus:
        return ProbeStatus(self.name, True)

    def close(self) -> None:
        pass


def _agent(sink: OtlpHttpSink) -> Agent:
    text = (f"interval: 1s\njitter: 0\nproc_root: {FAKE_PROC}\nsys_root: /nonexistent\n"
            "collectors:\n  ena: {enabled: false}\n  ebpf: {enabled: false}\n"
            f"exporters:\n  otlp: {{endpoint: '{sink.endpoint}', timeout: 1s}}\n")
    return Agent(load_text(text, "crash.yaml"), {}, stream=io.StringIO(),
                 metadata=InstanceMetadata())


@pytest.mark.parametrize("how", ["exception", "thread-death"])
def test_a_crashing_collector_is_restarted_with_backoff_while_the_others_go_on(
        how: str, caplog: pytest.LogCaptureFixture) -> None:
    sink = OtlpHttpSink()
    agent = _agent(sink)
    flaky = _Flaky("flaky", failures=3, how=how)
    agent.start()
    agent.runners["flaky"] = runner = CollectorRunner(flaky, agent.store, 1.0, 0.0)
    runner.start()
    try:
        netdev_before = agent.runners["netdev"].stats.cycles
        wait_until(lambda: len(flaky.calls) >= 5, scaled(15, 15))  # 3 failures, then recovered
        netdev_ran = agent.runners["netdev"].stats.cycles - netdev_before
        assert runner.alive() and agent.health() == (True, "ok")
        key = ("netreceiver.collector.errors", (("collector", "flaky"),))
        wait_until(lambda: sink.latest_values().get(key) == 3, 5)
        restarts = sink.latest_values()[("netreceiver.collector.restarts",
                                         (("collector", "flaky"),))]
    finally:
        agent.stop(flush=False)
        sink.close()
    gaps = [b - a for a, b in zip(flaky.calls, flaky.calls[1:], strict=False)]
    logged = [r for r in caplog.records if "flaky" in r.getMessage()]
    record(f"collector crash ({how})", backoff_gaps_s=[round(g, 1) for g in gaps[:4]],
           restarts=restarts, log_lines=len(logged), netdev_cycles_meanwhile=netdev_ran)
    # backoff 1, 2, 4 intervals after the 1st, 2nd, 3rd failure; then the normal period
    assert [round(g) for g in gaps[:3]] == [1, 2, 4], gaps
    assert gaps[3] <= 1.05, gaps  # back on its grid
    assert restarts == (3 if how == "thread-death" else 0)
    assert netdev_ran >= int(gaps[0] + gaps[1] + gaps[2]) - 1  # the others kept their period
    # an unchanged error is logged once (the runner's rule), a dying cycle every time
    assert len(logged) == (3 if how == "thread-death" else 1)


class _BrokenExporter:
    """An exporter that breaks the never-raise contract on its first calls."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def export(self, snapshot):  # type: ignore[no-untyped-def]
        from otel_netreceiver.export.base import ExportResult

        self.calls += 1
        if self.calls <= 2:
            raise ValueError("I/O operation on closed file")
        return ExportResult(True, snapshot.point_count())

    def shutdown(self) -> None:
        pass


def test_an_export_cycle_that_raises_does_not_end_the_export_loop() -> None:
    sink = OtlpHttpSink()
    agent = _agent(sink)
    broken = _BrokenExporter()
    agent.start()
    with agent._lock:
        agent.exporters.insert(0, broken)
    try:
        wait_until(lambda: broken.calls >= 4, 10)
        assert agent.counters.export_crashes == 2
        assert agent.health() == (True, "ok")
        wait_until(lambda: sink.latest_values().get(("netreceiver.export.crashes", ())) == 2, 5)
    finally:
        agent.stop(flush=False)
        sink.close()
