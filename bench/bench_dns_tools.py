"""The dns probe measured with outside tools: bpftrace as the per-packet floor, dnsperf as the
workload, in two test pods (a client, and a resolver running dnsmasq), same run.

cost: kernel.bpf_stats_enabled=1 (bench_bpf.bpf_stats), the dns probe loaded, two bpftrace
  processes running ``tracepoint:net:net_dev_queue { @ = count(); }`` and
  ``tracepoint:skb:kfree_skb { @ = count(); }`` (one program each), and on the probe's own
  hook bpftrace's count() compiled by bcc as cgroup_skb programs (dns_floor.py,
  bench_dns_count.c) and counting.c cut to the DNS header and one per-pod count (the floor
  of any per-pod DNS counting), while dnsperf sends queries from the client pod to dnsmasq,
  then while the client pod floods UDP to a closed port of the resolver pod (plain
  datagrams, then DNS answers from port 53: answers to gone sockets). Prints each program's
  run_time_ns / run_cnt: this process's from its own fdinfo, bpftrace's from /proc/<pid>/
  fdinfo. What is compared: the dns socket programs (cgroup_skb, once per packet at each
  socket end) against count() on the very same hook (apples to apples), and against
  bpftrace's count() on net_dev_queue (a tracepoint that fires once per packet per device
  queue); the dns probe's kfree_skb program against bpftrace's count() on the same
  tracepoint.
qps: dnsperf against dnsmasq for ``--seconds`` per round, rounds alternating without and
  with one variant attached alone (detached and re-attached between rounds, compiled
  once): two empty cgroup_skb programs (bench_dns_hook.py's: the hook's own price),
  count() on the hook, the per-pod floor, the dns probe; change = median over rounds of
  (with / mean of the two rounds without around it - 1), in queries per second.
  Statistics stay off, as on a node.
--pin: dnsmasq on CPU 0, dnsperf on CPU 1 (sched_setaffinity, taskset), so the scheduler
  does not move them between rounds.

    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_tools.py cost [--pin]
    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_tools.py qps --rounds 9 \
        --seconds 2 [--pin]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_bpf import bpf_stats
from bench.dns_floor import CountOnHook, Switch, per_pod_floor, probe_switch, socket_fds
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import DnsProbeConfig, EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from tests.support.dns_tools import Dnsmasq
from tests.support.pods import Pod, _die_with_parent, create_pod, destroy_pod
from tests.support.sdk_node import link_pods
from tests.support.tools import require_tool, stop_bpftrace

CLIENT, RESOLVER = 75, 76
DNSMASQ_CPU, DNSPERF_CPU = 0, 1  # --pin
RECORDS = ("--host-record=ok.test,10.1.2.3",)
FLOOD = """import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', port))
answer = (struct.pack('!HHHHHH', 7, 0x8180, 1, 1, 0, 0)
          + b'\\x02ok\\x04test\\x00\\x00\\x01\\x00\\x01')
for i in range(n):
    s.sendto(answer, (sys.argv[3], 40000 + i % 1000))
"""
PER_POD_LABEL = "DNS header + one per-pod count"


@contextlib.contextmanager
def pods() -> Iterator[tuple[Pod, Pod]]:
    made = []
    try:
        made = [create_pod(CLIENT), create_pod(RESOLVER, "systemd")]
        link_pods(made)
        yield made[0], made[1]
    finally:
        for pod in made:
            destroy_pod(pod)


def fd_stats(pid: str, fds: list[int] | None = None) -> dict[str, tuple[int, int]]:
    """(run_time_ns, run_cnt) of ``pid``'s BPF programs by prog id (fds: only those)."""
    out = {}
    for fd in fds if fds is not None else [int(p.name) for p in
                                            Path(f"/proc/{pid}/fdinfo").iterdir()]:
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
            info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
            if "prog_id" in info:
                out[info["prog_id"].strip()] = (int(info.get("run_time_ns", 0)),
                                                int(info.get("run_cnt", 0)))
    return out


def bpftrace(tracepoint: str) -> subprocess.Popen:
    proc = subprocess.Popen([require_tool("bpftrace"), "-B", "line", "-e",
                             f"tracepoint:{tracepoint} {{ @ = count(); }} "
                             'BEGIN { printf("ready\\n"); }'],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            preexec_fn=_die_with_parent)
    assert proc.stdout is not None
    while "ready" not in proc.stdout.readline():
        if proc.poll() is not None:
            raise RuntimeError(f"bpftrace on {tracepoint} did not start")
    return proc


def dnsperf(client: Pod, server: str, seconds: float, queries: Path, pin: bool) -> float:
    argv = [require_tool("dnsperf"), "-s", server, "-d", str(queries), "-l", str(seconds),
            "-c", "4", "-q", "64"]
    if pin:
        argv = ["taskset", "-c", str(DNSPERF_CPU), *argv]
    out = client.exec(*argv).stdout
    found = re.search(r"Queries per second:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"dnsperf printed no rate: {out[-500:]}")
    return float(found[1])


@contextlib.contextmanager
def resolver_running(resolver: Pod, pin: bool) -> Iterator[Dnsmasq]:
    """dnsmasq in the resolver pod (single-threaded: ip netns exec execs it, same pid)."""
    with Dnsmasq(resolver, *RECORDS, log_queries=False) as dnsmasq:
        if pin:
            os.sched_setaffinity(dnsmasq.proc.pid, {DNSMASQ_CPU})
        yield dnsmasq


def config(resolver: Pod) -> EbpfConfig:
    return EbpfConfig(probes=["dns"], dns=DnsProbeConfig(cluster_dns=[resolver.pod_ip]))


def load(resolver: Pod) -> EbpfCollector:
    collector = EbpfCollector(config(resolver), "/proc", NoPods())
    if collector.statuses() != {"dns": ""}:
        raise RuntimeError(f"the dns probe did not load: {collector.statuses()}")
    return collector


def _print_cost(label: str, before: dict[str, Any], after: dict[str, Any],
                names: dict[str, str]) -> None:
    for key, name in names.items():
        ns = after[key][0] - before[key][0]
        runs = after[key][1] - before[key][1]
        print(f"{label:<24} {name:<44} {runs:>9} {ns / max(runs, 1):>8.1f}")


@contextlib.contextmanager
def floors(resolver: Pod) -> Iterator[tuple[CountOnHook, Any]]:
    """count() on the hook and the per-pod floor, loaded (both detached at first)."""
    count, floor = CountOnHook(), None
    try:
        floor = per_pod_floor(config(resolver))
        probe_switch(floor)(False)
        yield count, floor
    finally:
        count.close()
        if floor is not None:
            floor.cleanup()


def cost(client: Pod, resolver: Pod, args: argparse.Namespace, queries: Path) -> None:
    """Every program attached at once; each one's run_time_ns / run_cnt per workload."""
    collector = load(resolver)
    with floors(resolver) as (count, floor):
        floor.socket_hooks(True)
        count.switch(True)
        fds = {**collector.program_fds(), **socket_fds(PER_POD_LABEL, floor), **count.fds()}
        tracers = {tp: bpftrace(tp) for tp in ("net:net_dev_queue", "skb:kfree_skb")}
        try:
            with bpf_stats():
                _cost_workloads(client, resolver, args, queries, fds, tracers)
        finally:
            for proc in tracers.values():
                stop_bpftrace(proc)
            collector.close()


def _cost_workloads(client: Pod, resolver: Pod, args: argparse.Namespace, queries: Path,
                    fds: dict[str, int], tracers: dict[str, subprocess.Popen]) -> None:
    names = {}
    for name, fd in fds.items():
        (prog_id,) = fd_stats("self", [fd])
        names[f"self:{prog_id}"] = name
    for tp, proc in tracers.items():
        for prog_id in fd_stats(str(proc.pid)):
            names[f"{proc.pid}:{prog_id}"] = f"bpftrace {tp} count()"

    def snapshot() -> dict[str, tuple[int, int]]:
        out = {f"self:{k}": v for k, v in fd_stats("self", list(fds.values())).items()}
        for proc in tracers.values():
            out.update({f"{proc.pid}:{k}": v for k, v in fd_stats(str(proc.pid)).items()})
        return out

    with resolver_running(resolver, args.pin):
        print(f"{'workload':<24} {'program':<44} {'runs':>9} {'ns/run':>8}")
        before = snapshot()
        rate = dnsperf(client, resolver.pod_ip, args.seconds, queries, args.pin)
        _print_cost(f"dnsperf {rate:.0f} q/s", before, snapshot(), names)
    for label, port in (("flood to closed port", 9999), ("answers to gone sockets", 53)):
        before = snapshot()
        client.exec(sys.executable, "-c", FLOOD, str(port), str(args.packets), resolver.pod_ip)
        _print_cost(label, before, snapshot(), names)


def qps(client: Pod, resolver: Pod, args: argparse.Namespace, queries: Path) -> None:
    """Rounds: without, then each variant followed by a round without; a variant's change is
    the median over rounds of its q/s against the mean of the rounds without around it."""
    from bench.bench_dns_hook import hooks

    collector = load(resolver)
    with floors(resolver) as (count, floor):
        variants = {"cgroup_skb, empty programs": hooks()["cgroup_skb, empty"],
                    "count() on the hook": count.switch,
                    PER_POD_LABEL: probe_switch(floor),
                    "the dns probe": probe_switch(collector._loaded["dns"])}
        variants["the dns probe"](False)
        try:
            without, with_ = _qps_rounds(client, resolver, args, queries, variants)
        finally:
            collector.close()
    print_qps(without, with_)


def _qps_rounds(client: Pod, resolver: Pod, args: argparse.Namespace, queries: Path,
                variants: dict[str, Switch]
                ) -> tuple[list[float], dict[str, list[tuple[float, float]]]]:
    without: list[float] = []
    with_: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}

    def run(seconds: float) -> float:
        return dnsperf(client, resolver.pod_ip, seconds, queries, args.pin)

    with resolver_running(resolver, args.pin):
        run(1)  # warm up
        without.append(run(args.seconds))
        for _ in range(args.rounds):
            for name, switch in variants.items():
                switch(True)
                try:
                    rate = run(args.seconds)
                finally:
                    switch(False)
                without.append(run(args.seconds))
                with_[name].append((rate, (without[-2] + without[-1]) / 2))
    return without, with_


def print_qps(without: list[float], with_: dict[str, list[tuple[float, float]]]) -> None:
    """The rounds without: their spread, and how far one moves from the next (what a paired
    change stands on)."""
    middle = statistics.median(without)
    steps = [abs(b / a - 1) for a, b in itertools.pairwise(without)]
    spread = (max(without) - min(without)) / middle
    print(f"without q/s: median {middle:.0f} (min {min(without):.0f}, max {max(without):.0f}, "
          f"{len(without)} rounds; spread (max-min)/median {spread:.1%}, "
          f"stdev/median {statistics.stdev(without) / middle:.1%}, "
          f"median |next/previous - 1| {statistics.median(steps):.1%})")
    for name, pairs in with_.items():
        ratios = [rate / base - 1 for rate, base in pairs]
        print(f"{name:<32} median {statistics.median(r for r, _ in pairs):.0f} q/s, "
              f"paired change {statistics.median(ratios):+.2%} "
              f"(rounds: {' '.join(f'{r:+.1%}' for r in ratios)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("cost", "qps"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--pin", action="store_true",
                        help=f"dnsmasq on CPU {DNSMASQ_CPU}, dnsperf on CPU {DNSPERF_CPU}")
    args = parser.parse_args()
    queries = Path("/tmp/onr-dnsperf-queries.txt")
    queries.write_text("ok.test A\nok.test AAAA\n" * 50)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}"
          f"{' (dnsmasq and dnsperf pinned)' if args.pin else ''}")
    started = time.monotonic()
    with pods() as (client, resolver):
        (cost if args.what == "cost" else qps)(client, resolver, args, queries)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()} "
          f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
