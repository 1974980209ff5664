"""What the correlation history and the node API cost, against the collection cycle.

With N network namespaces (one `unshare --net sleep` each, as root), measures CPU
(thread time) of:
- baseline: one per-pod collection cycle (PodNetCollector.collect + SeriesStore.update),
  what the agent does every 15 s anyway;
- history: recording that cycle's collection in the history as well (every cycle);
- sampler: the 1 s sampler (snmp, netstat, conntrack) for the host namespace only, for K
  pods that asked recently, and for every namespace (what "1 s for all pods" would cost);
- answer: one /v1/correlate question over the real Unix socket, history filled with 5
  minutes of cycles, and its change-point count (memory follows movement, not series).

    sudo .venv/bin/python bench/bench_correlation.py [--size 200] [--active 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.nodeapi.callers import CallerIdentifier
from otel_netreceiver.nodeapi.correlate import Correlator
from otel_netreceiver.nodeapi.server import ApiContext, NodeApi
from otel_netreceiver.ratelimit import KeyedLimiter
from otel_netreceiver.runtime.correlation import SAMPLED_PROBES
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.pods import reap, spawn_bare_namespaces


class FirstK:
    """Select the first ``k`` namespaces of each cycle (stands in for "pods that asked")."""

    def __init__(self, k: int) -> None:
        self.k, self.seen = k, 0

    def __call__(self, identity: object) -> bool:
        self.seen += 1
        return getattr(identity, "kind", "") == "host" or self.seen <= self.k


def cpu_per_call(fn, cycles: int) -> float:
    fn()  # warm
    started = time.thread_time()
    for _ in range(cycles):
        fn()
    return (time.thread_time() - started) / cycles


def sampler_cost(k: int | None, cycles: int) -> float:
    picker = FirstK(k if k is not None else 10**9)
    collector = PodNetCollector(PodNetConfig(probes=SAMPLED_PROBES, export_quiet=True), "/proc",
                                NoPods(), select=picker)
    history = History(300, metric_names())

    def cycle() -> None:
        picker.seen = 0
        collection = collector.collect()
        history.update(collection)

    return cpu_per_call(cycle, cycles)


def ask_over_socket(path: str) -> float:
    class Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(path)

    started = time.perf_counter()
    conn = Unix("agent", timeout=5)
    conn.request("POST", "/v1/correlate", body=json.dumps({"signal": "dns"}),
                 headers={"Content-Type": "application/json"})
    doc = json.loads(conn.getresponse().read())
    conn.close()
    assert "verdict" in doc, doc
    return time.perf_counter() - started


def answer_cost(collector: PodNetCollector, history: History) -> tuple[float, int]:
    now = time.time_ns()
    for i in range(20):  # 5 minutes of 15 s cycles, back-dated
        collection = collector.collect()
        history.record(collection.every_point(), now - (20 - i) * 15 * 10**9)
    correlator = Correlator(RULES, HistorySource(history), "bench")
    ctx = ApiContext(CallerIdentifier("/proc", lambda uid: None, lambda ip: None),
                     KeyedLimiter(1e6, 1e6), correlator, correlator.diagnose, "bench",
                     threading.BoundedSemaphore(8), Counter(), threading.Lock())
    path = str(Path(tempfile.mkdtemp()) / "api.sock")
    api = NodeApi(ctx, "", 0, path)
    api.start()
    try:
        ask_over_socket(path)
        wall = sorted(ask_over_socket(path) for _ in range(50))[25]
    finally:
        api.shutdown()
    return wall, history.sample_count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--active", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=10)
    args = parser.parse_args()
    procs = spawn_bare_namespaces(args.size)
    time.sleep(0.5)
    try:
        collector = PodNetCollector(PodNetConfig(), "/proc", NoPods())
        store, history = SeriesStore(), History(300, metric_names())
        baseline = cpu_per_call(lambda: store.update(collector.collect()), args.cycles)
        collection = collector.collect()
        recording = cpu_per_call(lambda: history.update(collection), args.cycles)
        host_only = sampler_cost(0, args.cycles)
        active = sampler_cost(args.active, args.cycles)
        everyone = sampler_cost(None, args.cycles)
        wall, samples = answer_cost(collector, History(300, metric_names()))
    finally:
        reap(procs)
    print(f"{args.size} namespaces; CPU per call (thread time); core % at the given interval")
    print(f"  baseline collection cycle      {baseline * 1e3:8.2f} ms   "
          f"{baseline / 15 * 100:6.3f} % at 15 s")
    print(f"  + history record of the cycle  {recording * 1e3:8.2f} ms   "
          f"ratio {recording / baseline:5.3f} of the cycle")
    for label, cost in (("sampler: host netns only", host_only),
                        (f"sampler: host + {args.active} active", active),
                        (f"sampler: all {args.size} (not done)", everyone)):
        print(f"  {label:30} {cost * 1e3:8.2f} ms   {cost * 100:6.3f} % at 1 s")
    print(f"  /v1/correlate over the socket   {wall * 1e3:8.2f} ms wall (median of 50), "
          f"history of 5 min: {samples} change points")


if __name__ == "__main__":
    main()
