"""Per-event cost of each BPF program, from the kernel's own BPF statistics, under load.

Loads every probe (as root), enables kernel.bpf_stats_enabled, sends a UDP flood to a
closed port on loopback (every datagram is one skb:kfree_skb NO_SOCKET drop, one
NET_RX softirq pass and one transmit on lo), then reads run_time_ns / run_cnt of each
program with bpftool. Baseline in the same run: bpftrace's ``@[args->reason] =
count()`` on the same tracepoint and the same flood (an earlier measurement on this kind of
machine: ~220 ns).
Also prints the agent's CPU per collection with all probes and its peak RSS.

    sudo .venv/bin/python bench/bench_bpf.py [--packets 200000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import BPF_PROBES, EbpfConfig
from otel_netreceiver.k8s.directory import NoPods

PROBES = list(BPF_PROBES)  # every probe; one the kernel refuses (virtcmdlatency here) is listed
STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


@contextlib.contextmanager
def bpf_stats() -> Iterator[None]:
    """kernel.bpf_stats_enabled on (each program's run_time_ns / run_cnt counted), then set
    back to what it was."""
    previous = STATS.read_text().strip()
    STATS.write_text("1\n")
    try:
        yield
    finally:
        STATS.write_text(previous + "\n")


def flood(packets: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(packets):
        sock.sendto(b"x", ("127.0.0.1", 9))
    sock.close()


def tcp_exchange(messages: int) -> None:
    """Request/response on a loopback TCP pair: socket wake-ups, reads, sends (latency probes)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    for _ in range(messages):
        client.send(b"x" * 64)
        peer.recv(64)
    for s in (client, peer, server):
        s.close()


def own_stats(fds: dict[str, int]) -> dict[str, tuple[int, int]]:
    """(run_time_ns, run_cnt) of this process's programs, from /proc/self/fdinfo: programs
    other processes load (other probes, other test runs) cannot leak into the figures."""
    stats = {}
    for name, fd in fds.items():
        info = dict(line.split(":\t", 1) for line in
                    Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines() if ":\t" in line)
        stats[name] = (int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
    return stats


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
    name = "kfree_skb"  # bpftrace names the program after the tracepoint
    old = before.get(name, (0, 0))
    return after[name][0] - old[0], after[name][1] - old[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    with bpf_stats():
        collector = EbpfCollector(EbpfConfig(probes=PROBES), "/proc", NoPods())
        for name, reason in collector.statuses().items():
            print(f"{name}: {'loaded' if not reason else 'unavailable: ' + reason}")
        fds = collector.program_fds()
        before = own_stats(fds)
        started = time.perf_counter()
        flood(args.packets)
        flood_s = time.perf_counter() - started
        tcp_exchange(args.packets // 4)
        after = own_stats(fds)
        cpu = time.thread_time()
        for _ in range(10):
            collector.collect()
        collect_ms = (time.thread_time() - cpu) / 10 * 1e3
        collector.close()
        base_ns, base_runs = bpftrace_baseline(args.packets)
    print(f"flood: {args.packets} UDP datagrams to a closed port on lo in {flood_s:.1f} s, "
          f"then {args.packets // 4} TCP messages on lo")
    print(f"{'probe/program':<28} {'events':>9} {'ns/event':>9}")
    for name in sorted(after):
        run_ns = after[name][0] - before.get(name, (0, 0))[0]
        runs = after[name][1] - before.get(name, (0, 0))[1]
        if runs:
            print(f"{name:<28} {runs:>9} {run_ns / runs:>9.1f}")
    # packetloss's program, or the one it shares with tcptwrcv on skb:kfree_skb (bpf/compose.py)
    kfree = next(n for n in after if n.split("/")[0].split("+")[0] == "packetloss"
                 and n.endswith(("/on_kfree_skb", "/onr_skb_kfree_skb")))
    ours = (after[kfree][0] - before[kfree][0]) / max(after[kfree][1] - before[kfree][1], 1)
    print(f"baseline bpftrace count() on skb:kfree_skb: {base_runs} events, "
          f"{base_ns / max(base_runs, 1):.1f} ns/event")
    print(f"ratio bpftrace / packetloss: {base_ns / max(base_runs, 1) / ours:.2f}x")
    print(f"agent: {collect_ms:.2f} ms CPU per collection with all probes; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
