"""The agent's CPU per collection cycle for the dns probe with 200 pods doing DNS.

Creates ``--pods`` network namespaces (one `unshare --net sleep` each, bench_podnet.py's
bare pods) and loads the dns probe (collectors/ebpf.py). Between cycles, outside the
measured region, a helper thread enters each namespace in turn and does what a pod's
resolver does: two lookups answered on the namespace's own 127.0.0.1:53 (NOERROR and
NXDOMAIN, one socket each way) and one query never answered, so ``pending`` fills and,
past the namespaces' 5 s resolver timeout, every cycle sweeps a pod's worth of timeouts
per namespace. Measured: the thread CPU of one agent cycle for this collector, i.e.
EbpfCollector.collect() (the resolv.conf timeouts written, the sweep, the maps read, the
points made), the store update, the snapshot and the OTLP wire encoding. Idle rounds (the
same namespaces, no DNS) first, for the floor.

    sudo flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_cycle.py [--pods 200]
        [--cycles 10] [--gap 1.0]
"""

from __future__ import annotations

import argparse
import gc
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_podnet import Traffic
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.pods import reap, spawn_bare_namespaces

QUESTION = b"\x07example\x03svc\x00" + struct.pack("!HH", 1, 1)


def _query(ident: int) -> bytes:
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + QUESTION


def lookups() -> None:
    """In the current namespace: two answered lookups and one left unanswered."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    for ident, rcode in ((1, 0), (2, 3), (3, None)):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.connect(("127.0.0.1", 53))
            client.send(_query(ident))
            packet, peer = server.recvfrom(512)
            if rcode is not None:
                server.sendto(packet[:2] + struct.pack("!H", 0x8180 | rcode) + packet[4:], peer)
                client.recv(512)
    server.close()


class DnsTraffic(Traffic):
    def send(self) -> None:
        self._each(lookups)


def measure(collector: EbpfCollector, cycles: int, gap: float,
            traffic: DnsTraffic | None) -> tuple[float, int]:
    store, encoder = SeriesStore(), WireEncoder({"service.name": "bench"})
    points = 0

    def cycle() -> None:
        nonlocal points
        collection = collector.collect()
        store.update(collection)
        encoder.encode(store.snapshot())
        points = len(collection.points)

    def timed(work: Callable[[], None]) -> float:
        if traffic is not None:
            traffic.send()
        time.sleep(gap)
        started = time.thread_time()
        work()
        return time.thread_time() - started

    timed(cycle)  # warm
    return sum(timed(cycle) for _ in range(cycles)) / cycles, points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--gap", type=float, default=1.0)
    args = parser.parse_args()
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    procs = spawn_bare_namespaces(args.pods)
    time.sleep(0.5)
    traffic = DnsTraffic([p.pid for p in procs])
    collector = EbpfCollector(EbpfConfig(probes=["dns"]), "/proc", NoPods())
    try:
        traffic.loopback_up()
        gc.freeze()
        idle, idle_points = measure(collector, args.cycles, args.gap, None)
        busy, busy_points = measure(collector, args.cycles, args.gap, traffic)
        entries = [v for _, v in collector._loaded["dns"][b"pending"].items()]
        swept = sum(1 for v in entries if v.expired)
        pending = len(entries) - swept
    finally:
        collector.close()
        traffic.close()
        reap(procs)
    print(f"{'namespaces':>10} {'mode':>5} {'ms/cycle':>9} {'points':>7}")
    print(f"{args.pods:>10} {'idle':>5} {idle * 1e3:>9.2f} {idle_points:>7}")
    print(f"{args.pods:>10} {'dns':>5} {busy * 1e3:>9.2f} {busy_points:>7}")
    print(f"at the end: {pending} queries pending, {swept} timed out and kept for late answers")
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
