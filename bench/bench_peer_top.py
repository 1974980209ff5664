"""The cost per packet of the peers probe's per-peer table (collectors.ebpf.peers_top).

The top-peer log records need per-peer counts in the kernel: one more LRU per-CPU hash
lookup (and an update on a new peer) per packet whose peer is not the pod itself. Loopback
traffic is same_pod and skips it, so bench_workload.py's loopback workloads cannot show it:
here a UDP flood leaves the node's namespace through a veth to a test pod (tests/support/
pods.py; nothing leaves the machine), to one peer address (a flow) and spread over many
ports of it (the same peer: one row).

Two copies of the peers probe are loaded by the agent's own class (collectors/ebpf.py), one
with peers_top 0 (no table compiled) and one with peers_top 5; rounds alternate which one is
attached (off, on, off, ..., off). With kernel.bpf_stats_enabled=1 for the whole run, each
round reads the attached egress program's run_time_ns / run_cnt (own fdinfo), and the
sending thread's CPU time per datagram (CLOCK_THREAD_CPUTIME_ID). Medians of rounds, and
the median of (on - mean of the two offs around it).

    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_peer_top.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from tests.support.pods import create_pod, destroy_pod

STATS = Path("/proc/sys/kernel/bpf_stats_enabled")
DATAGRAMS = 100_000


def load(top: int) -> tuple[EbpfCollector, object]:
    collector = EbpfCollector(EbpfConfig(probes=["peers"], peers_top=top), "/proc", NoPods())
    if collector.statuses() != {"peers": ""}:
        raise SystemExit(f"peers probe unavailable: {collector.statuses()}")
    (_, bpf), = collector.objects().values()
    bpf.socket_hooks(False)
    return collector, bpf


def egress_stats(bpf: object) -> tuple[int, int]:
    fd = next(fn.fd for fn in bpf.funcs.values() if fn.name == b"peers_egress")  # type: ignore
    text = Path(f"/proc/self/fdinfo/{fd}").read_text()
    info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    return int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0))


def flood(address: str, ports: int) -> float:
    """Thread CPU µs per datagram sent to ``address`` (closed ports: nothing answers)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    started = time.thread_time_ns()
    for i in range(DATAGRAMS):
        sock.sendto(b"x" * 64, (address, 20000 + i % ports))
    used = time.thread_time_ns() - started
    sock.close()
    return used / DATAGRAMS / 1e3


def measure(bpf: object, address: str, ports: int) -> tuple[float, float]:
    bpf.socket_hooks(True)  # type: ignore[attr-defined]
    ns0, runs0 = egress_stats(bpf)
    us = flood(address, ports)
    ns1, runs1 = egress_stats(bpf)
    bpf.socket_hooks(False)  # type: ignore[attr-defined]
    return (ns1 - ns0) / max(runs1 - runs0, 1), us


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ports", type=int, default=1)
    args = parser.parse_args()
    print(f"loadavg before: {os.getloadavg()}")
    pod = create_pod(190, "systemd")
    previous = STATS.read_text().strip()
    STATS.write_text("1\n")
    off, on = load(0), load(5)
    try:
        ns: dict[str, list[float]] = {"off": [], "on": []}
        us: dict[str, list[float]] = {"off": [], "on": []}
        for index in range(2 * args.rounds + 1):
            side = "on" if index % 2 else "off"
            n, u = measure((on if side == "on" else off)[1], pod.pod_ip, args.ports)
            ns[side].append(n)
            us[side].append(u)
        deltas = [u - (us["off"][i] + us["off"][i + 1]) / 2 for i, u in enumerate(us["on"])]
        print(f"peers_egress ns/run: peers_top 0 {statistics.median(ns['off']):.1f}, "
              f"peers_top 5 {statistics.median(ns['on']):.1f} (rounds: "
              + " ".join(f"{v:.0f}" for v in ns["off"]) + " / "
              + " ".join(f"{v:.0f}" for v in ns["on"]) + ")")
        print(f"sender us/datagram: off {statistics.median(us['off']):.3f}, on "
              f"{statistics.median(us['on']):.3f}, paired delta {statistics.median(deltas):+.3f}")
    finally:
        STATS.write_text(previous + "\n")
        for collector, _ in (off, on):
            collector.close()
        destroy_pod(pod)
        print(f"loadavg after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
