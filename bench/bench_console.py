"""Console summary length for a node with 20 busy pods: the per-cycle totals (before) against
the rates-by-pod summary (after), from the same agent cycle.

Creates 20 test pods (network namespace, veth, kubelet-style cgroup) and keeps every one
busy: each sends UDP datagrams and TCP connection attempts to a closed port of the host
side of its veth (so packets, ICMP, resets and TCP counters move). Runs the agent
in-process (eBPF off, console exporter with ``exporters.console.totals: true``, which
prints the summary and then the cumulative listing the console printed before) and counts
the lines of one steady-state summary and of its totals section.

    sudo .venv/bin/python bench/bench_console.py [--pods 20] [--interval 2]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.pods import create_pod, destroy_pod, kernel_supports_test_pods

FIRST_INDEX = 130  # 10.251.130.0/30 onwards
BUSY = r"""
import socket, sys, time
host = sys.argv[1]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    for _ in range(20):
        udp.sendto(b"x" * 200, (host, 9))
    tcp = socket.socket()
    tcp.settimeout(0.2)
    try:
        tcp.connect((host, 9))
    except OSError:
        pass
    tcp.close()
    time.sleep(0.1)
"""


def summaries(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("── otel-netreceiver on"):
            blocks.append([])
        if blocks:
            blocks[-1].append(line)
    return blocks


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    reason = kernel_supports_test_pods()
    if reason:
        print(f"skipped: {reason}", file=sys.stderr)
        return 1
    pods = [create_pod(FIRST_INDEX + i) for i in range(args.pods)]
    busy = [subprocess.Popen(["ip", "netns", "exec", p.netns, sys.executable, "-c", BUSY,
                              p.host_ip]) for p in pods]
    stream = io.StringIO()
    config = (f"interval: {args.interval}s\ncollectors: {{ebpf: {{enabled: false}}, "
              "ena: {enabled: false}}\nexporters: {console: {totals: true}}\n"
              "correlation: {enabled: false}\n")
    agent = Agent(load_text(config, "bench.yaml"), {}, stream, InstanceMetadata())
    try:
        agent.start()
        time.sleep(args.interval * 4.5)  # the first summary has no rates; take a later one
    finally:
        agent.stop(flush=False)
        for proc in busy:
            proc.kill()
            proc.wait()
        for pod in pods:
            destroy_pod(pod)
    block = summaries(stream.getvalue())[-1]
    cut = block.index("  totals:")
    after, before = block[:cut], [block[0], *block[cut + 1:]]
    moving = sum(1 for line in after if line.startswith("  ") and not line.startswith("    ")
                 and not line.startswith("  rates") and not line.startswith("  quiet"))
    print(f"pods busy: {args.pods}; rows shown in the summary: {moving}")
    print(f"lines per summary: before (cumulative totals) {len(before)}, "
          f"after (rates by pod) {len(after)}, ratio {len(before) / len(after):.1f}x")
    print("the summary:")
    print("\n".join(after))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
