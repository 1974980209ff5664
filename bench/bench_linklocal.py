"""The dns probe's egress program per packet: ordinary packets vs link-local ones.

Only a packet to a configured link-local address enters the link-local function (route
lookup, per-pod, per-interface and per-second map updates); every other packet pays the
address compare only. Measured from the kernel's BPF statistics (run_time_ns / run_cnt of
dns_egress, this process's program only) in alternating rounds: a UDP flood on loopback to
127.0.0.1:9 (no service) and to 127.0.0.3:9, configured as IMDS (the node's namespace:
LL_HOST, so the cgroup id is read too, the costliest path). Median over rounds.

    sudo flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_linklocal.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_bpf import STATS, own_stats
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import DnsProbeConfig, EbpfConfig
from otel_netreceiver.k8s.directory import NoPods

SERVICE = "127.0.0.3"


def flood(address: str, packets: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(packets):
        sock.sendto(b"x" * 32, (address, 9))
    sock.close()


def ns_per_run(fds: dict[str, int], address: str, packets: int) -> float:
    before = own_stats(fds)["egress"]
    flood(address, packets)
    after = own_stats(fds)["egress"]
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--packets", type=int, default=50000)
    args = parser.parse_args()
    dns = DnsProbeConfig(imds=[SERVICE], amazon_dns=[], time_sync=[], pod_identity=[])
    collector = EbpfCollector(EbpfConfig(probes=["dns"], dns=dns), "/proc", NoPods())
    assert collector.statuses() == {"dns": ""}, collector.statuses()
    collector.collect()  # writes the node namespace's routes (LL_HOST)
    fds = {"egress": next(fd for name, fd in collector.program_fds().items()
                          if name.endswith("dns_egress"))}
    old = STATS.read_text()
    STATS.write_text("1\n")
    plain: list[float] = []
    linklocal: list[float] = []
    try:
        for _ in range(args.rounds):
            plain.append(ns_per_run(fds, "127.0.0.1", args.packets))
            linklocal.append(ns_per_run(fds, SERVICE, args.packets))
        points = collector.collect().points
    finally:
        STATS.write_text(old)
        collector.close()
    counted = sum(int(p.value) for p in points  # type: ignore[call-overload]
                  if p.metric.name == "netreceiver.linklocal.packets")
    print(f"load average {os.getloadavg()}; {args.rounds} rounds x {args.packets} packets")
    print(f"dns_egress ns/packet, ordinary: median {statistics.median(plain):.0f} "
          f"(rounds {[round(x) for x in plain]})")
    print(f"dns_egress ns/packet, link-local: median {statistics.median(linklocal):.0f} "
          f"(rounds {[round(x) for x in linklocal]})")
    print(f"link-local packets counted: {counted} of {args.rounds * args.packets}")


if __name__ == "__main__":
    main()
