"""Per-event cost of each BPF program, from the kernel's own BPF statistics, under load.

Loads every probe (as root), enables kernel.bpf_stats_enabled, sends a UDP flood to a
closed port on loopback (every datagram is one skb:kfree_skb NO_SOCKET drop, one
NET_RX softirq pass and one transmit on lo), then reads run_time_ns / run_cnt of each
program with bpftool. Baseline in the same run: bpftrace's ``@[args->reason] =
count()`` on the same tracepoint and the same flood (REFERENCE.md measured ~220 ns).
Also prints the agent's CPU per collection with all probes and its peak RSS.

    sudo .venv/bin/python bench/bench_bpf.py [--packets 200000]
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import time
from pathlib import Path

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.collectors.podnet.identity import NoPods
from otel_netreceiver.config.schema import EbpfConfig

PROBES = ["packetloss", "tcpreset", "tcpretrans", "net_softirq", "netiftxlat"]
STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def flood(packets: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(packets):
        sock.sendto(b"x", ("127.0.0.1", 9))
    sock.close()


def prog_stats() -> dict[str, tuple[int, int]]:
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    stats: dict[str, tuple[int, int]] = {}
    for prog in json.loads(out):
        name = prog.get("name", "")
        run_ns, runs = prog.get("run_time_ns", 0), prog.get("run_cnt", 0)
        old = stats.get(name, (0, 0))
        stats[name] = (old[0] + run_ns, old[1] + runs)
    return stats


def bpftrace_baseline(packets: int) -> tuple[int, int]:
    proc = subprocess.Popen(["bpftrace", "-B", "line", "-e",
                             "tracepoint:skb:kfree_skb { @[args->reason] = count(); } "
                             "BEGIN { printf(\"ready\\n\"); }"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    while "ready" not in proc.stdout.readline():
        pass
    before = prog_stats()
    flood(packets)
    after = prog_stats()
    proc.send_signal(2)
    proc.communicate(timeout=30)
    name = next(n for n in after if "kfree" in n)
    old = before.get(name, (0, 0))
    return after[name][0] - old[0], after[name][1] - old[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    previous = STATS.read_text().strip()
    STATS.write_text("1\n")
    try:
        collector = EbpfCollector(EbpfConfig(probes=PROBES), "/proc", NoPods())
        before = prog_stats()
        started = time.perf_counter()
        flood(args.packets)
        flood_s = time.perf_counter() - started
        after = prog_stats()
        cpu = time.thread_time()
        for _ in range(10):
            collector.collect()
        collect_ms = (time.thread_time() - cpu) / 10 * 1e3
        collector.close()
        base_ns, base_runs = bpftrace_baseline(args.packets)
    finally:
        STATS.write_text(previous + "\n")
    print(f"flood: {args.packets} UDP datagrams to a closed port on lo in {flood_s:.1f} s")
    print(f"{'program':<16} {'events':>9} {'ns/event':>9}")
    for name in sorted(after):
        if not name.startswith("on_"):
            continue
        run_ns = after[name][0] - before.get(name, (0, 0))[0]
        runs = after[name][1] - before.get(name, (0, 0))[1]
        if runs:
            print(f"{name:<16} {runs:>9} {run_ns / runs:>9.1f}")
    ours = (after["on_kfree_skb"][0] - before.get("on_kfree_skb", (0, 0))[0]) / max(
        after["on_kfree_skb"][1] - before.get("on_kfree_skb", (0, 0))[1], 1)
    print(f"baseline bpftrace count() on skb:kfree_skb: {base_runs} events, "
          f"{base_ns / max(base_runs, 1):.1f} ns/event")
    print(f"ratio bpftrace / packetloss: {base_ns / max(base_runs, 1) / ours:.2f}x")
    print(f"agent: {collect_ms:.2f} ms CPU per collection with all probes; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
