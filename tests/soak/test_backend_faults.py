"""Backend down (refusing, hanging, flapping) and slow, against the threaded agent.

The agent reads the real host /proc/1/net/dev while this test pushes UDP
datagrams over loopback, so the exported loopback counter moves by a known
amount during the outage. After the backend returns, the same series must
carry the same start time (no reset) and a total that includes everything
sent while the backend was away (no gap). The backend is the real OTLP/HTTP
sink of tests/support, a closed port, or a listener that accepts and never
answers.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.otlp_sink import OtlpHttpSink, starts_of, values_of
from tests.support.soak import (
    ResourceSampler,
    cpu_seconds,
    fd_count,
    record,
    scaled,
    wait_until,
)

pytestmark = pytest.mark.soak

INTERVAL, TIMEOUT = 1.0, 1.0
# The kernel event records (events/sdk_logs.py) go to the same backend and, unlike metrics,
# are queued while it is away, by design, up to collectors.events.max_queue_size records
# plus the batch being exported: a few KB each. Set here, so what they may hold is known
# (at most 2 x 64 records, well under 1 MB) instead of 2048 + 512 by default.
EVENT_QUEUE = 64
# A flap is noticed when one export spends its whole retry horizon (the configured deadline)
# inside it; the exporter's backoff is random, so a flap that does not outlast one export
# interval plus that horizon may be absorbed by a retry. This much longer, for scheduling.
FLAP_MARGIN = 0.5
LO_RX = ("system.network.io", (("network.interface.name", "lo"),
                               ("network.io.direction", "receive")))
MB = 1024 * 1024


def _config(endpoint: str) -> str:
    return f"""
interval: {INTERVAL}s
jitter: 0
collectors:
  ena: {{enabled: false}}
  podnet: {{enabled: false}}
  ebpf: {{enabled: false}}
  events: {{max_queue_size: {EVENT_QUEUE}, max_export_batch_size: {EVENT_QUEUE}}}
exporters:
  otlp: {{endpoint: "{endpoint}", timeout: {TIMEOUT}s}}
"""


class Traffic:
    """UDP datagrams over loopback on a thread; counts the payload bytes sent."""

    def __init__(self, size: int = 1000, rate: float = 200.0) -> None:
        self._rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rx.bind(("127.0.0.1", 0))
        self._rx.setblocking(False)
        self._tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._size, self._period = size, 1.0 / rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-traffic", daemon=True)

    def _run(self) -> None:
        payload = b"x" * self._size
        while not self._stop.wait(self._period):
            self.sent += self._tx.sendto(payload, self._rx.getsockname())
            try:
                while self._rx.recv(65536):
                    pass
            except BlockingIOError:
                pass

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._rx.close()
        self._tx.close()


class HangingListener:
    """Accepts connections and never reads or answers (a wedged collector)."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._sock.settimeout(0.2)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self._sock.close()


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, rec: logging.LogRecord) -> None:
        self.records.append(rec)


@contextmanager
def _agent(endpoint: str) -> Iterator[Agent]:
    agent = Agent(load_text(_config(endpoint), "soak.yaml"), {}, stream=io.StringIO(),
                  metadata=InstanceMetadata())
    agent.start()
    try:
        yield agent
    finally:
        agent.stop(flush=False)


@contextmanager
def _logs() -> Iterator[_Count]:
    handler, root = _Count(), logging.getLogger("otel_netreceiver")
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def _last(sink: OtlpHttpSink, after_ns: int = 0) -> tuple[float, int] | None:
    """Loopback rx bytes and start time of the latest request, if read after ``after_ns``."""
    if not sink.requests:
        return None
    request = sink.requests[-1]
    start, at = starts_of(request)[LO_RX]
    return (values_of(request)[LO_RX], start) if at > after_ns else None


def _down(kind: str, sink: OtlpHttpSink, port: int) -> HangingListener | None:
    sink.close()
    return HangingListener(port) if kind == "hanging" else None


@pytest.mark.parametrize("kind", ["refusing", "hanging"])
def test_backend_down_then_back_loses_nothing(kind: str, sampler: ResourceSampler) -> None:
    outage = scaled(8.0, 600.0)
    sink = OtlpHttpSink()
    port = sink.port
    with Traffic() as traffic, _agent(sink.endpoint) as agent, _logs() as logs:
        wait_until(lambda: LO_RX in sink.latest_values(), 10)
        sampler.mark("steady")
        cpu0, steady_len = cpu_seconds(), scaled(3.0, 60.0)
        time.sleep(steady_len)
        cpu_steady = (cpu_seconds() - cpu0) / steady_len
        before_value, before_start = _last(sink)
        sent_before, cycles_before = traffic.sent, agent.runners["netdev"].stats.cycles
        sampler.mark("outage")
        listener = _down(kind, sink, port)
        first_log, cpu0 = len(logs.records), cpu_seconds()
        time.sleep(outage)
        cpu_outage = (cpu_seconds() - cpu0) / outage
        sent_during, outage_end_ns = traffic.sent - sent_before, time.time_ns()
        cycles = agent.runners["netdev"].stats.cycles - cycles_before
        failure_logs = [r for r in logs.records[first_log:] if "export to otlp failed" in
                        r.getMessage()]
        other_logs = len(logs.records) - first_log - len(failure_logs)
        held = len(listener.accepted) + 1 if listener is not None else 0  # the test's own fds
        if listener is not None:
            listener.close()
        sampler.mark("back")
        sink = OtlpHttpSink(port)
        back = time.monotonic()
        try:
            wait_until(lambda: sink.requests, 10, period=0.01)
            resumed = time.monotonic() - back
            # the first read of the kernel's counter made after the outage ended
            after_value, after_start = wait_until(lambda: _last(sink, outage_end_ns), 5)
            snapshot_series = agent.store.snapshot().point_count()
            # settled, not the first instant: the sink's thread for a connection the agent
            # already closed may not have closed its end yet (seen once in CI: +2 for a
            # moment); a leak stays, a connection being torn down does not
            fds_steady_now = sampler.steady("steady", "outage")[2]
            settle = time.monotonic() + 3
            while fd_count() > fds_steady_now + 1 and time.monotonic() < settle:
                time.sleep(0.05)
            fds_after = fd_count()  # asserted below: a leak is still there after 3 s
        finally:
            sink.close()
    sampler.mark("end")
    rss_steady, traced_steady, fds_steady = sampler.steady("steady", "outage")
    rss_peak, traced_peak, fds_peak = sampler.peak("outage", "back")
    record(f"backend {kind} {outage:.0f}s", resumed_s=resumed, export_failure_logs=len(
        failure_logs), collection_cycles=cycles, rss_steady_mb=rss_steady / MB,
        rss_peak_mb=rss_peak / MB, traced_steady_mb=traced_steady / MB,
        traced_peak_mb=traced_peak / MB, fds_steady=fds_steady,
        fds_peak_agent=fds_peak - held, fds_after=fds_after,
        outage_bytes=sent_during, counter_delta=after_value - before_value,
        cpu_steady=cpu_steady, cpu_outage=cpu_outage)
    assert cycles >= 0.8 * outage / INTERVAL  # collection went on while the backend was down
    # one warning per failed export interval, never one per point (hundreds per snapshot)
    assert 1 <= len(failure_logs) <= outage / INTERVAL + 1
    assert other_logs <= 2
    assert snapshot_series > 50  # each of those lines stood for a whole snapshot
    assert resumed <= INTERVAL + 0.5, resumed  # within one interval of the backend's return
    assert after_start == before_start  # the cumulative series was not reset
    assert after_value - before_value >= sent_during  # everything sent meanwhile is counted
    # nothing queued for metrics while the backend was away; event records: EVENT_QUEUE
    assert traced_peak - traced_steady < 2 * MB
    assert rss_peak - rss_steady < 8 * MB
    assert fds_peak - held <= fds_steady + 2  # one connection at a time to the dead backend
    assert fds_after <= fds_steady + 1  # and none left behind


def test_flapping_backend_keeps_one_start_time_and_rising_totals() -> None:
    flaps = int(scaled(3, 150))
    sink = OtlpHttpSink()
    try:
        with Traffic(), _agent(sink.endpoint) as agent, _logs() as logs:
            wait_until(lambda: LO_RX in sink.latest_values(), 10)
            horizon = agent.exporters[0].settings.deadline  # one export, retries included
            down = INTERVAL + horizon + FLAP_MARGIN
            start = time.monotonic()
            for _ in range(flaps):
                sink.status = 503
                time.sleep(down)
                sink.status, count = 200, len(sink.requests)
                wait_until(lambda count=count: len(sink.requests) > count, INTERVAL + 1.5)
                time.sleep(INTERVAL)
            failures = agent.counters.exporters["otlp"].failures
            duration = time.monotonic() - start
        warnings = [r for r in logs.records if "export to otlp failed" in r.getMessage()]
        values = [values_of(r)[LO_RX] for r in sink.requests]
        starts = {starts_of(r)[LO_RX][0] for r in sink.requests}
    finally:
        sink.close()
    record(f"backend flapping {duration:.0f}s", flaps=flaps, down_s=down, failed_exports=failures,
           failure_logs=len(warnings), successful_exports=len(values))
    # every flap outlasts an interval plus an export's retry horizon: at least one export
    # fails in each, whatever the retries' jitter
    assert failures >= flaps
    assert len(warnings) == failures  # one line per failed interval
    assert len(starts) == 1  # one start time through every flap
    assert values == sorted(values)  # cumulative totals only ever rise


def test_slow_backend_never_blocks_collection_and_timeouts_are_bounded() -> None:
    sink = OtlpHttpSink()
    try:
        with _agent(sink.endpoint) as agent:
            wait_until(lambda: sink.requests, 10)
            sink.delay = 3 * TIMEOUT  # answers long after the exporter's deadline
            cycles, began = agent.runners["netdev"].stats.cycles, time.monotonic()
            durations = []
            exporter = agent.exporters[0]
            for _ in range(int(scaled(3, 60))):
                t0 = time.monotonic()
                result = exporter.export(agent.store.snapshot())
                durations.append(time.monotonic() - t0)
                assert not result.ok and "Timeout" in result.error
            elapsed = time.monotonic() - began
            ran = agent.runners["netdev"].stats.cycles - cycles
            sink.delay = 0.3 * TIMEOUT  # slow but within the deadline: exports succeed
            count = len(sink.requests)
            wait_until(lambda: len(sink.requests) > count + 1, 6 * INTERVAL)
            ok_failures = agent.counters.exporters["otlp"].failures
    finally:
        sink.delay = 0
        sink.close()
    record("backend slow (3x timeout)", export_s_max=max(durations), timeout_s=TIMEOUT,
           collection_cycles=ran, elapsed_s=elapsed)
    assert max(durations) <= TIMEOUT + 0.3  # the deadline includes the retries
    assert ran >= int(elapsed / INTERVAL) - 1  # the collectors kept their period meanwhile
    assert ok_failures >= 1
