"""The dns probe's hook: tcx on the pods' veths against cgroup_skb, per packet, pod to pod.

bench_dns_hook.py measured cgroup_skb (every packet of every local socket, at the socket)
on loopback. A tc hook on the node-side veth of each pod runs only for packets crossing
that veth, with direct packet access from the Ethernet header. Here both run on traffic
between two test pods (bench_dns_tools.py's client and resolver pods, routed through the
node): each empty and with the same port filter (bench_dns_tchook.c's tc_ports is
bench_dns_hook.py's cg_ports from the Ethernet header, IPv6 added).
- cgroup_skb: bench_dns_hook.py's programs on the cgroup v2 root, inet egress and ingress
  (BPF_F_ALLOW_MULTI); a pod-to-pod packet runs it twice (sender's egress, receiver's
  ingress);
- tcx: bcc loads the program as SCHED_CLS; BPF_LINK_CREATE (bpf(2) through ctypes: bcc has
  no tcx) with BPF_TCX_INGRESS and BPF_TCX_EGRESS on both pods' node-side veths (four
  links, closed to detach); a pod-to-pod packet runs it twice (the sender's veth ingress,
  the receiver's veth egress).

packets: UDP flood (client pod to a bound, never-read socket in the resolver pod: the
  receiver's cgroup ingress runs before the receive buffer drops it) and UDP ping-pong,
  both ends in this thread (each socket made in its pod's namespace with setns): the
  thread's CPU time per operation (no IRQ time accounting here: the softirq work the
  send triggers in this thread is counted), rounds alternating without / each variant;
  change = median over rounds of (with - mean of the two rounds without around it).
dnsperf: the same rotation with dnsperf in the client pod against dnsmasq in the resolver
  pod (bench_dns_tools.py's; --pin: dnsmasq and dnsperf each on its own CPU), in queries
  per second.
cost: kernel.bpf_stats_enabled=1 (off in the two others), each variant attached alone
  under each workload: programs' runs per operation and run_time_ns / run_cnt. Then what
  the attribution helpers return on the node-side veths (tc_attr_*, tc_netns_*).

    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_tchook.py packets --rounds 9
    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_tchook.py dnsperf --rounds 4 [--pin]
    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_tchook.py cost
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_bpf import bpf_stats, own_stats
from bench.bench_dns_hook import hooks
from bench.bench_dns_tools import dnsperf, pods, print_qps, resolver_running
from bench.bench_workload import ping_pong, us_per_op
from otel_netreceiver.bpf.tp_btf import _bpf
from otel_netreceiver.sockdiag.netlink import _setns
from tests.support.pods import Pod

SOURCE = Path(__file__).with_suffix(".c")
# include/uapi/linux/bpf.h: enum bpf_cmd, enum bpf_attach_type
BPF_LINK_CREATE, BPF_TCX_INGRESS, BPF_TCX_EGRESS = 28, 46, 47
SO_NETNS_COOKIE = 71  # include/uapi/asm-generic/socket.h
SINK_PORT = 9999
OPS = {"udp_flood": 50_000, "udp_pingpong": 20_000}
Switch = Callable[[bool], None]


def link_create(prog_fd: int, ifindex: int, attach_type: int) -> int:
    """A tcx bpf_link (union bpf_attr.link_create: prog_fd, target_ifindex, attach_type,
    flags; tcx.relative_fd/expected_revision zero: appended, any revision)."""
    return _bpf(BPF_LINK_CREATE, struct.pack("<IIII", prog_fd, ifindex, attach_type, 0)
                + bytes(112))


def tcx_switch(ingress_fd: int, egress_fd: int, ifindexes: list[int]) -> Switch:
    links: list[int] = []

    def switch(on: bool) -> None:
        if on:
            for ifindex in ifindexes:
                links.append(link_create(ingress_fd, ifindex, BPF_TCX_INGRESS))
                links.append(link_create(egress_fd, ifindex, BPF_TCX_EGRESS))
        else:
            while links:
                os.close(links.pop())
    return switch


@contextlib.contextmanager
def inside(pod: Pod) -> Iterator[None]:
    """This thread in ``pod``'s network namespace (sockets keep the one they were made in)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/run/netns/{pod.netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def udp_in(pod: Pod) -> socket.socket:
    with inside(pod):
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def workloads(client: Pod, resolver: Pod) -> dict[str, Callable[[int], None]]:
    def flood(ops: int) -> None:
        sink, sock = udp_in(resolver), udp_in(client)
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sink.bind((resolver.pod_ip, SINK_PORT))
        for _ in range(ops):
            sock.sendto(b"x", (resolver.pod_ip, SINK_PORT))
        sock.close()
        sink.close()

    def pingpong(ops: int) -> None:
        ping_pong(udp_in(client), client.pod_ip, udp_in(resolver), resolver.pod_ip, ops)
    return {"udp_flood": flood, "udp_pingpong": pingpong}


def variants(client: Pod, resolver: Pod, fds: dict[str, int]) -> tuple[Any, dict[str, Switch]]:
    """(the tc bcc object, each variant's switch by label); ``fds`` gets their program fds."""
    from bcc import BPF

    cgroup = hooks(fds)
    switches = {k: cgroup[k] for k in ("cgroup_skb, empty", "cgroup_skb, port filter")}
    tc = BPF(src_file=str(SOURCE).encode())
    veths = [socket.if_nametoindex(pod.host_veth) for pod in (client, resolver)]
    for label, name in (("tcx, empty", b"tc_empty"), ("tcx, port filter", b"tc_ports")):
        fd = tc.load_func(name, BPF.SCHED_CLS).fd
        fds[label] = fd
        switches[label] = tcx_switch(fd, fd, veths)
    return tc, switches


def rotate(switches: dict[str, Switch], measure: Callable[[], float],
           rounds: int) -> tuple[list[float], dict[str, list[tuple[float, float]]]]:
    """Rounds without, then each variant followed by a round without: (the rounds without,
    per variant (with, mean of the two rounds without around it))."""
    without = [measure()]
    pairs: dict[str, list[tuple[float, float]]] = {name: [] for name in switches}
    for _ in range(rounds):
        for name, switch in switches.items():
            switch(True)
            try:
                value = measure()
            finally:
                switch(False)
            without.append(measure())
            pairs[name].append((value, (without[-2] + without[-1]) / 2))
    return without, pairs


def packets(client: Pod, resolver: Pod, rounds: int) -> None:
    _, switches = variants(client, resolver, {})
    print(f"{'workload':<13} {'variant':<24} {'without us/op':>13} {'change ns/op':>12} "
          f"{'change':>7}  rounds (ns/op)")
    for workload, run in workloads(client, resolver).items():
        ops = OPS[workload]
        run(ops // 10)  # warm up (ARP, route cache)
        without, pairs = rotate(switches, lambda r=run, n=ops: us_per_op(r, n), rounds)
        base = statistics.median(without)
        for name, got in pairs.items():
            deltas = [w - b for w, b in got]
            delta = statistics.median(deltas)
            print(f"{workload:<13} {name:<24} {base:>13.3f} {delta * 1e3:>+12.0f} "
                  f"{delta / base:>+7.1%}  {' '.join(f'{d * 1e3:+.0f}' for d in deltas)}")


def queries_file() -> Path:
    queries = Path("/tmp/onr-dnsperf-queries.txt")
    queries.write_text("ok.test A\nok.test AAAA\n" * 50)
    return queries


def qps(client: Pod, resolver: Pod, rounds: int, seconds: float, pin: bool) -> None:
    _, switches = variants(client, resolver, {})
    queries = queries_file()
    with resolver_running(resolver, pin):
        dnsperf(client, resolver.pod_ip, 1, queries, pin)  # warm up
        without, pairs = rotate(
            switches, lambda: dnsperf(client, resolver.pod_ip, seconds, queries, pin), rounds)
    print_qps(without, pairs)


def cost(client: Pod, resolver: Pod, seconds: float, pin: bool) -> None:
    fds: dict[str, int] = {}
    tc, switches = variants(client, resolver, fds)
    queries = queries_file()
    runs = workloads(client, resolver)
    with resolver_running(resolver, pin), bpf_stats():
        print(f"{'workload':<13} {'variant':<24} {'ops':>7} {'runs/op':>7} {'ns/run':>7} "
              f"{'ns/op':>7}")
        for workload in (*runs, "dnsperf"):
            for name, switch in switches.items():
                before = own_stats({name: fds[name]})[name]
                switch(True)
                try:
                    if workload == "dnsperf":
                        ops = int(dnsperf(client, resolver.pod_ip, seconds, queries, pin)
                                  * seconds)
                    else:
                        ops = OPS[workload]
                        runs[workload](ops)
                finally:
                    switch(False)
                after = own_stats({name: fds[name]})[name]
                ns, count = after[0] - before[0], after[1] - before[1]
                print(f"{workload:<13} {name:<24} {ops:>7} {count / ops:>7.2f} "
                      f"{ns / max(count, 1):>7.1f} {ns / ops:>7.1f}")
    hits = sum(sum(v) for v in tc["tc_hits"].values())
    print(f"tc_ports found port 53 in {hits / ops:.2f} packets per dnsperf query ({hits})")
    attribution(tc, client, resolver, runs["udp_pingpong"])


def netns_cookie(pod: Pod | None) -> int:
    with inside(pod) if pod else contextlib.nullcontext():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        return struct.unpack("<Q", sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0]


def attribution(tc: Any, client: Pod, resolver: Pod, pingpong: Callable[[int], None]) -> None:
    """What skb->sk, bpf_skb_cgroup_id and bpf_get_netns_cookie give on the node-side veths
    (each direction's last packet of a ping-pong), or why the verifier refused."""
    from bcc import BPF

    veths = [socket.if_nametoindex(pod.host_veth) for pod in (client, resolver)]
    print(f"node-side veths: ifindex {veths}; netns cookies: node {netns_cookie(None)}, "
          f"client pod {netns_cookie(client)}, resolver pod {netns_cookie(resolver)}")
    for names, what in (((b"tc_attr_in", b"tc_attr_out"), "sk, cgroup id, ifindex"),
                        ((b"tc_netns_in", b"tc_netns_out"), "bpf_get_netns_cookie")):
        try:
            ingress, egress = (tc.load_func(n, BPF.SCHED_CLS).fd for n in names)
        except Exception as exc:  # bcc: Exception with the verifier's log
            print(f"{what}: refused on tc: {str(exc).splitlines()[-1][:200]}")
            continue
        switch = tcx_switch(ingress, egress, veths)
        switch(True)
        try:
            pingpong(100)
        finally:
            switch(False)
    seen = {int(k.value): int(v.value) for k, v in tc["seen"].items()}
    for side, base in (("veth ingress (from a pod)", 0), ("veth egress (to a pod)", 4)):
        print(f"{side}: skb->sk {'set' if seen.get(base) else 'NULL'}, "
              f"bpf_skb_cgroup_id {seen.get(base + 1, 0)}, ifindex {seen.get(base + 2, 0)}, "
              f"bpf_get_netns_cookie {seen.get(base + 3, 0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("packets", "dnsperf", "cost"))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--pin", action="store_true",
                        help="dnsmasq on CPU 0, dnsperf on CPU 1 (bench_dns_tools.py's --pin)")
    args = parser.parse_args()
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    started = time.monotonic()
    with pods() as (client, resolver):
        if args.what == "packets":
            packets(client, resolver, args.rounds)
        elif args.what == "dnsperf":
            qps(client, resolver, args.rounds, args.seconds, args.pin)
        else:
            cost(client, resolver, args.seconds, args.pin)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()} "
          f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
