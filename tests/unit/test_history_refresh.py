"""What a question sees of events just before it: series born with their first event, and
the refresh that must read after the error (found by tests/e2e/test_sdk_scenarios.py)."""

from __future__ import annotations

import time

from otel_netreceiver.catalogue import metric
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Collection, HistogramValue, Point, attrs
from otel_netreceiver.runtime.scheduler import CollectorRunner

S = 10**9
RESETS = metric("netreceiver.pod.tcp.resets")
RCVBUF = metric("netreceiver.udp.rcvbuf_errors")
POD = attrs({"k8s.pod.uid": "a", "netns.kind": "pod", "tcp.reset.direction": "received"})
OTHER = attrs({"k8s.pod.uid": "b", "netns.kind": "pod", "tcp.reset.direction": "received"})


def _history() -> History:
    return History(60.0, {RESETS.name, RCVBUF.name}, born_at_zero={"ebpf"})


def _collect(h: History, collector: str, t: int, *points: Point) -> None:
    h.update(Collection.of(collector, points, t * S))


def _delta(h: History, name: str, start: int, end: int, who: str = "a") -> float:
    rows = h.increases(name, lambda a: dict(a)["k8s.pod.uid"] == who, start * S, end * S)
    return sum(r.delta for r in rows)


def test_an_ebpf_series_first_seen_counted_from_zero_since_the_previous_read() -> None:
    h = _history()
    _collect(h, "ebpf", 100, Point(RESETS, OTHER, 4))  # the map has another pod's entry
    _collect(h, "ebpf", 101)
    _collect(h, "ebpf", 102, Point(RESETS, POD, 1))  # the first reset of pod a
    assert _delta(h, RESETS.name, 90, 103) == 1
    (row,) = h.increases(RESETS.name, lambda a: dict(a)["k8s.pod.uid"] == "a", 90 * S, 103 * S)
    assert row.start_unix_nano == 101 * S  # the zero is dated at the previous read
    assert _delta(h, RESETS.name, 101, 103) == 1
    assert _delta(h, RESETS.name, 102, 103) == 0  # a window after the event: nothing
    assert _delta(h, RESETS.name, 90, 103, "b") == 0  # b's first read was the agent's first


def test_other_collectors_and_first_reads_keep_the_first_observation_as_baseline() -> None:
    h = _history()
    _collect(h, "podnet", 100)
    _collect(h, "podnet", 101, Point(RCVBUF, POD, 7))  # a pod found late: counted before
    assert _delta(h, RCVBUF.name, 90, 102) == 0
    _collect(h, "ebpf", 101, Point(RESETS, POD, 3))  # the ebpf collector's first read
    assert _delta(h, RESETS.name, 90, 102) == 0


def test_a_new_histogram_gets_a_zero_histogram() -> None:
    h = History(60.0, {"netreceiver.softirq.latency"}, born_at_zero={"ebpf"})
    latency = metric("netreceiver.softirq.latency")
    _collect(h, "ebpf", 100)
    value = HistogramValue((0.001,), (2, 1), 0.003, 3)
    _collect(h, "ebpf", 101, Point(latency, attrs({"softirq.vector": "NET_RX"}), value))
    (row,) = h.windows(latency.name, lambda a: True, 90 * S, 102 * S)
    assert row.delta == 3 and row.first == HistogramValue((0.001,), (0, 0), 0.0, 0)


class _Counting:
    name = "ebpf"

    def __init__(self) -> None:
        self.reads = 0

    def collect(self) -> Collection:
        self.reads += 1
        return Collection.of(self.name, (), time.time_ns())

    def probe(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def close(self) -> None:
        pass


class _Sink:
    def update(self, collection: Collection) -> None:
        pass


def test_a_question_reads_again_when_the_last_read_came_before_the_error() -> None:
    source = _Counting()
    runner = CollectorRunner(source, _Sink(), 60.0, 0.0)
    runner.run_once()
    runner.collect_now(1.0)  # recent: skipped, as before
    assert source.reads == 1
    error_at = time.time_ns()
    started = time.monotonic()
    runner.collect_now(1.0, error_at)  # the last read predates the error: read again
    assert source.reads == 2
    assert time.monotonic() - started >= 0.04  # but not sooner than min_gap after the last
    runner.collect_now(1.0, error_at)  # this read came after the error: enough
    assert source.reads == 2


class _Upkeeping(_Counting):
    """A collector with slow upkeep (the eBPF collector's page-out of the compiler)."""

    def __init__(self, upkeep_s: float = 0.0) -> None:
        super().__init__()
        self.upkeeps: list[int] = []  # reads done when each upkeep ran
        self.upkeep_s = upkeep_s

    def housekeep(self) -> None:
        self.upkeeps.append(self.reads)
        time.sleep(self.upkeep_s)


def test_upkeep_runs_after_the_collectors_own_cycles_never_on_a_question() -> None:
    source = _Upkeeping()
    runner = CollectorRunner(source, _Sink(), 60.0, 0.0)
    runner.collect_now(1.0, time.time_ns())  # a question: reads, no upkeep
    runner.collect_now(1.0, time.time_ns())
    assert source.reads == 2 and source.upkeeps == []
    runner.start()  # the runner's own cycle: read, then upkeep
    try:
        deadline = time.monotonic() + 5
        while not source.upkeeps and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        runner.stop()
    assert source.upkeeps == [3]


def test_a_question_does_not_wait_for_upkeep_in_progress() -> None:
    source = _Upkeeping(upkeep_s=1.0)
    runner = CollectorRunner(source, _Sink(), 60.0, 0.0)
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while not source.upkeeps and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.upkeeps == [1]  # upkeep now sleeps for a second
        started = time.monotonic()
        runner.collect_now(1.0, time.time_ns())
        waited = time.monotonic() - started
    finally:
        runner.stop()
    assert source.reads == 2 and waited < 0.5, waited
