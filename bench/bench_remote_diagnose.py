"""Remote diagnose over a real Prometheus: batched pod queries against one query per pod.

Backfills one past hour for N pods (the per-pod UDP, TCP and drop counters the node
playbooks read; every 10th pod with UDP receive-buffer errors) plus node series into
Prometheus 2.53, then runs the same ``diagnose`` (RULES + CLUSTER_RULES, 30-minute
window) twice in this process:
- baseline: every pod-scope condition asked per pod (``k8s_pod_uid="<uid>"``), as a
  naive translation of the engine's per-pod loop would;
- remote mode: PrometheusSource, one query per condition for all pods, answers shared.
Prints queries sent, wall time, findings (which must be identical) and the ratios.

    .venv/bin/python bench/bench_remote_diagnose.py [--pods 50 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.diagnosis.engine import diagnose
from otel_netreceiver.diagnosis.model import Condition, Question
from otel_netreceiver.diagnosis.remote import PrometheusSource, QueryClient
from otel_netreceiver.diagnosis.rules import RULES
from otel_netreceiver.diagnosis.rules_cluster import CLUSTER_RULES
from tests.support.backends import start_prometheus
from tests.support.backfill import AgentSeries, backfill, openmetrics

HOUR, STEP, WINDOW = 3600.0, 30.0, 1800.0
POD_METRICS = ("netreceiver.udp.rcvbuf_errors", "netreceiver.udp.no_ports",
               "netreceiver.tcp.listen_overflows", "netreceiver.tcp.listen_drops")
NODE = {"k8s_node_name": "node-a"}


class PerPod(PrometheusSource):
    """The baseline: no batching, each pod's conditions are their own queries."""

    def evaluate(self, condition: Condition, question: Question):
        return super().evaluate(condition, replace(question, every_pod=False))


def series(pods: int) -> list[AgentSeries]:
    out = []
    for i in range(pods):
        pod = {"k8s.pod.uid": f"uid-{i}", "k8s.pod.name": f"web-{i}", "k8s.namespace.name": "shop",
               "netns.kind": "pod", "netns.inode": str(4026532000 + i)}
        for name in POD_METRICS:
            bad = name == POD_METRICS[0] and i % 10 == 0
            out.append(AgentSeries(name, pod, (lambda t: 2 * t) if bad else (lambda t: 5.0),
                                   NODE))
    return out


def run(source: PrometheusSource, question: Question, repeat: int) -> tuple[float, int, list]:
    best, found, queries = float("inf"), [], 0
    for _ in range(repeat):
        fresh = type(source)(source.client)  # a new cache each run, as each CLI run has
        t0 = time.perf_counter()
        found = diagnose(RULES + CLUSTER_RULES, fresh, fresh, question)
        best, queries = min(best, time.perf_counter() - t0), fresh.queries
    return best, queries, sorted((f.rule, f.subject) for f in found)


def measure(pods: int, repeat: int, workdir: Path) -> None:
    start = (int(time.time()) // 3600 - 6) * 3600
    backfill(workdir / "tsdb", openmetrics([(start, [s.prom() for s in series(pods)])],
                                           HOUR, STEP))
    with start_prometheus(workdir) as prometheus:
        end = start + HOUR
        question = Question("", int((end - WINDOW) * 1e9), int(end * 1e9), every_pod=True)
        client = QueryClient(prometheus.url)
        base_s, base_q, base_found = run(PerPod(client), question, repeat)
        ours_s, ours_q, ours_found = run(PrometheusSource(client), question, repeat)
    assert base_found == ours_found, "batching changed the findings"
    print(f"{pods:5d} pods  findings {len(ours_found):3d}  baseline {base_q:5d} queries "
          f"{base_s * 1000:8.1f} ms  remote mode {ours_q:3d} queries {ours_s * 1000:7.1f} ms  "
          f"ratio queries {base_q / ours_q:5.1f}x  time {base_s / ours_s:5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for pods in args.pods:
        with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
            measure(pods, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
