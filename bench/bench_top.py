"""What ``GET /v1/top`` costs the agent: rows between two snapshots, against the cycle that
made them.

For each size, creates that many network namespaces (one ``unshare --net sleep`` process
each, as root), runs the per-pod collector into a store twice (the agent's cycle: collect,
store update, snapshot) and measures CPU (thread time) of:
- baseline: one such cycle (what the agent does every interval anyway);
- top: ``top_view`` over the last two snapshots plus the JSON encoding of the answer, which
  the agent does once per interval when someone runs ``top`` (cached for every other ask).

    sudo .venv/bin/python bench/bench_top.py [--sizes 50 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.runtime.store import SeriesStore
from otel_netreceiver.top.rows import top_view
from tests.support.pods import reap, spawn_bare_namespaces


def measure(rounds: int) -> tuple[float, float, int, int]:
    collector = PodNetCollector(PodNetConfig(), "/proc", NoPods())
    store = SeriesStore()
    store.update(collector.collect())  # warm: identities cached, as in steady state
    previous = store.snapshot()
    cycle = top = 0.0
    rows = size = 0
    for _ in range(rounds):
        started = time.thread_time()
        store.update(collector.collect())
        current = store.snapshot()
        cycle += time.thread_time() - started
        started = time.thread_time()
        view = top_view(previous, current)
        size = len(json.dumps(view.as_dict()))
        top += time.thread_time() - started
        rows, previous = len(view.rows), current
    return cycle / rounds * 1e3, top / rounds * 1e3, rows, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for size in args.sizes:
        procs = spawn_bare_namespaces(size)
        try:
            time.sleep(0.5)
            cycle, top, rows, answer = measure(args.rounds)
        finally:
            reap(procs)
        print(f"{size:4d} extra namespaces  rows {rows:4d}  baseline cycle {cycle:7.1f} ms  "
              f"top rows + JSON {top:6.1f} ms  ratio {top / cycle:.2f}x  answer {answer:,} B")


if __name__ == "__main__":
    main()
