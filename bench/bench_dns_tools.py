"""The dns probe measured with outside tools: bpftrace as the per-packet floor, dnsperf as the
workload, in two test pods (a client, and a resolver running dnsmasq), same run.

cost: kernel.bpf_stats_enabled=1, the dns probe loaded and two bpftrace processes running
  ``tracepoint:net:net_dev_queue { @ = count(); }`` and ``tracepoint:skb:kfree_skb { @ =
  count(); }`` (one program each), while dnsperf sends queries from the client pod to
  dnsmasq, then while the client pod floods UDP to a closed port of the resolver pod (plain
  datagrams, then DNS answers from port 53: answers to gone sockets). Prints each program's
  run_time_ns / run_cnt: this process's from its own fdinfo, bpftrace's from /proc/<pid>/
  fdinfo. What is compared: the dns socket programs (cgroup_skb, once per packet at each
  socket end) against bpftrace's count() on net_dev_queue (a tracepoint that fires once per
  packet per device queue), the floor of "a program on every packet"; and the dns probe's
  kfree_skb program against bpftrace's count() on the very same tracepoint.
qps: dnsperf against dnsmasq for ``--seconds`` per round, rounds alternating without and
  with the probe attached (detached and re-attached between rounds, compiled once), and
  with two empty cgroup_skb programs in its place (bench_dns_hook.py's: the hook's own
  price); change = median over rounds of (with / mean of the two rounds without around
  it - 1), in queries per second. Statistics stay off, as on a node.

    sudo flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_tools.py cost
    sudo flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_tools.py qps --rounds 7
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import DnsProbeConfig, EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from tests.support.dns_tools import Dnsmasq
from tests.support.pods import Pod, _die_with_parent, create_pod, destroy_pod
from tests.support.sdk_node import link_pods
from tests.support.tools import require_tool, stop_bpftrace

STATS = Path("/proc/sys/kernel/bpf_stats_enabled")
CLIENT, RESOLVER = 75, 76
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


def dnsperf(client: Pod, server: str, seconds: float, queries: Path) -> float:
    out = client.exec(require_tool("dnsperf"), "-s", server, "-d", str(queries), "-l",
                      str(seconds), "-c", "4", "-q", "64").stdout
    found = re.search(r"Queries per second:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"dnsperf printed no rate: {out[-500:]}")
    return float(found[1])


def probe_switch(collector: EbpfCollector) -> Callable[[bool], None]:
    """Attach or detach everything the dns probe hooks (socket programs, kfree_skb)."""
    probe = collector._loaded["dns"]

    def switch(on: bool) -> None:
        probe.socket_hooks(on)
        if on:
            probe.attach_tracepoint(tp=b"skb:kfree_skb", fn_name=b"dns_no_socket")
        else:
            probe.detach_tracepoint(b"skb:kfree_skb")
    return switch


def load(resolver: Pod) -> EbpfCollector:
    dns = DnsProbeConfig(cluster_dns=[resolver.pod_ip])
    collector = EbpfCollector(EbpfConfig(probes=["dns"], dns=dns), "/proc", NoPods())
    if collector.statuses() != {"dns": ""}:
        raise RuntimeError(f"the dns probe did not load: {collector.statuses()}")
    return collector


def _print_cost(label: str, before: dict[str, Any], after: dict[str, Any],
                names: dict[str, str]) -> None:
    for key, name in names.items():
        ns = after[key][0] - before[key][0]
        runs = after[key][1] - before[key][1]
        print(f"{label:<22} {name:<34} {runs:>9} {ns / max(runs, 1):>8.1f}")


def cost(client: Pod, resolver: Pod, seconds: float, queries: Path, packets: int) -> None:
    collector = load(resolver)
    fds = collector.program_fds()
    tracers = {tp: bpftrace(tp) for tp in ("net:net_dev_queue", "skb:kfree_skb")}
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

    STATS.write_text("1\n")
    try:
        with Dnsmasq(resolver, *RECORDS, log_queries=False):
            print(f"{'workload':<22} {'program':<34} {'runs':>9} {'ns/run':>8}")
            before = snapshot()
            qps = dnsperf(client, resolver.pod_ip, seconds, queries)
            _print_cost(f"dnsperf {qps:.0f} q/s", before, snapshot(), names)
        for label, port in (("flood to closed port", 9999), ("answers to gone sockets", 53)):
            before = snapshot()
            client.exec(sys.executable, "-c", FLOOD, str(port), str(packets), resolver.pod_ip)
            _print_cost(label, before, snapshot(), names)
    finally:
        STATS.write_text("0\n")
        for proc in tracers.values():
            stop_bpftrace(proc)
        collector.close()


def qps(client: Pod, resolver: Pod, seconds: float, queries: Path, rounds: int) -> None:
    """Rounds: without, then each variant followed by a round without; a variant's change is
    the median over rounds of its q/s against the mean of the rounds without around it."""
    from bench.bench_dns_hook import hooks

    collector = load(resolver)
    variants = {"cgroup_skb, empty programs": hooks()["cgroup_skb, empty"],
                "the dns probe": probe_switch(collector)}
    variants["the dns probe"](False)
    without: list[float] = []
    with_: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    try:
        with Dnsmasq(resolver, *RECORDS, log_queries=False):
            dnsperf(client, resolver.pod_ip, 1, queries)  # warm up
            without.append(dnsperf(client, resolver.pod_ip, seconds, queries))
            for _ in range(rounds):
                for name, switch in variants.items():
                    switch(True)
                    try:
                        rate = dnsperf(client, resolver.pod_ip, seconds, queries)
                    finally:
                        switch(False)
                    without.append(dnsperf(client, resolver.pod_ip, seconds, queries))
                    with_[name].append((rate, (without[-2] + without[-1]) / 2))
    finally:
        collector.close()
    print(f"without q/s: median {statistics.median(without):.0f} "
          f"(min {min(without):.0f}, max {max(without):.0f}, {len(without)} rounds)")
    for name, pairs in with_.items():
        ratios = [rate / base - 1 for rate, base in pairs]
        print(f"{name:<28} median {statistics.median(r for r, _ in pairs):.0f} q/s, "
              f"paired change {statistics.median(ratios):+.2%} "
              f"(rounds: {' '.join(f'{r:+.1%}' for r in ratios)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("cost", "qps"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--packets", type=int, default=100_000)
    args = parser.parse_args()
    queries = Path("/tmp/onr-dnsperf-queries.txt")
    queries.write_text("ok.test A\nok.test AAAA\n" * 50)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    started = time.monotonic()
    with pods() as (client, resolver):
        if args.what == "cost":
            cost(client, resolver, args.seconds, queries, args.packets)
        else:
            qps(client, resolver, args.seconds, queries, args.rounds)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()} "
          f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
