"""Cost of event records: the kernel's per-drop cost with the budget, and the agent's per record.

As root: loads the counting packetloss program (the baseline, same run) and the
PACKETLOSS event program, enables BPF run-time statistics and floods a closed UDP
port on loopback (each datagram is one skb:kfree_skb drop; drops of other processes
during the run are counted too). Twice: with the
default budget (almost every drop takes the suppressed path: one per-CPU lookup
and a counter) and with an unlimited one (every drop copies a 128-byte record to
the perf buffer). Prints ns/drop from run_time_ns / run_cnt of this process's
programs, ratios against the counting program, how many records arrived and how
many were counted lost, and the user-space cost per record (decode + naming, pure functions).

    sudo .venv/bin/python bench/bench_events.py [--packets 200000]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_bpf import flood
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig, EventsConfig
from otel_netreceiver.events.model import EVENT_NAMES, RECORD, Names, decode_record, to_event
from otel_netreceiver.events.source import EventSource
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import attrs

NR_BPF, BPF_ENABLE_STATS, BPF_STATS_RUN_TIME = 321, 32, 0  # x86-64; include/uapi/linux/bpf.h


def enable_stats() -> int:
    """BPF_ENABLE_STATS: run-time statistics on while the fd is open, counted per holder.

    Unlike writing kernel.bpf_stats_enabled, another process (another benchmark) turning
    statistics off cannot end this run's (kernel/bpf/syscall.c bpf_enable_runtime_stats).
    """
    attr = ctypes.c_uint32(BPF_STATS_RUN_TIME)
    fd = ctypes.CDLL(None, use_errno=True).syscall(NR_BPF, BPF_ENABLE_STATS, ctypes.byref(attr),
                                                   ctypes.sizeof(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS")
    return fd


def prog_stats(fd: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of this process's program fd, from its fdinfo: no name clashes
    with the same programs loaded by other processes."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines() if ":" in line)
    return int(fields["run_time_ns"]), int(fields["run_cnt"])


def _fd(bpf: Any, function: bytes) -> int:
    return bpf.funcs[function].fd


def _delta(before: tuple[int, int], after: tuple[int, int]) -> tuple[int, int]:
    return after[0] - before[0], after[1] - before[1]


def kernel_run(packets: int, budget: int) -> tuple[float, float, int, dict, int]:
    received: list = []
    source = EventSource(EventsConfig(types=["PACKETLOSS"], kernel_budget=budget,
                                      rate_limit=1e9, burst=10**9), EbpfConfig(), "/proc",
                         NoPods(), received.append)
    counting = EbpfCollector(EbpfConfig(probes=["packetloss"]), "/proc", NoPods())
    source.start()
    fds = (_fd(source._loaded["packetloss"], b"ev_on_kfree_skb"),
           _fd(counting._loaded["packetloss"], b"on_kfree_skb"))
    try:
        before = [prog_stats(fd) for fd in fds]
        flood(packets)
        after = [prog_stats(fd) for fd in fds]
        (ev_ns, ev_runs), (base_ns, base_runs) = (_delta(b, a)
                                                  for b, a in zip(before, after, strict=True))
        drops = source.drop_counts()
        refused = sum(c for (n, _), c in drops.items() if n == "PACKETLOSS")
        deadline = time.monotonic() + 30  # let the poll thread drain what did arrive
        while time.monotonic() < deadline and len(received) + refused < ev_runs:
            time.sleep(0.2)
        lost_cb = source.perf_lost
    finally:
        source.close()
        counting.close()
    return ev_ns / max(ev_runs, 1), base_ns / max(base_runs, 1), ev_runs, drops, lost_cb


def user_cost(n: int = 50_000) -> float:
    data = RECORD.pack(1, 0xffffffff81000000, 0, EVENT_NAMES.index("PACKETLOSS"), 4026531833,
                       3, 0, -1, 0, 0x0800, 17, 0, b"\x02\x00\x00\x09\x7f\x00\x00\x01",
                       b"\x02\x00\x00\x09\x7f\x00\x00\x01", b"")
    pod = attrs({"netns.inode": 4026531833, "netns.kind": "host"})
    names = Names({("skb", "kfree_skb", "reason"): {3: "NO_SOCKET"}}, lambda a: "__udp4_lib_rcv",
                  lambda i: pod)
    started = time.perf_counter()
    for _ in range(n):
        to_event(decode_record(data), names, 0)
    return (time.perf_counter() - started) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    stats = enable_stats()
    try:
        runs = {budget: kernel_run(args.packets, budget) for budget in (100, 10**9)}
    finally:
        os.close(stats)
    print(f"flood: {args.packets} UDP datagrams to a closed port on lo, per run")
    print(f"{'budget/CPU/s':>13} {'event ns/drop':>14} {'counting ns/drop':>17} {'ratio':>6} "
          f"{'drops':>7} {'counted lost (lost callback)'}")
    for budget, (ev, base, drops_seen, drops, lost_cb) in runs.items():
        lost = {r: c for (n, r), c in drops.items() if n == "PACKETLOSS"}
        label = "unlimited" if budget > 10**6 else str(budget)
        print(f"{label:>13} {ev:>14.1f} {base:>17.1f} {ev / base:>5.2f}x {drops_seen:>7} "
              f"{lost} ({lost_cb})")
    print(f"user space: {user_cost():.0f} ns per record (decode + name, pure)")


if __name__ == "__main__":
    main()
