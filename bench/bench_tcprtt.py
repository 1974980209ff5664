"""Cost of probe tcprtt (sock_diag with tcp_info per namespace) at 50/200 pods x N sockets.

Creates ``size`` network namespaces (one `unshare --net sleep` each, as root) and, from a
helper thread that setns()es into each in turn, ``pairs`` loopback TCP connections per
namespace (2 x pairs established sockets), held open. Then measures, in the same process
and interleaved cycle by cycle, the thread CPU time per cycle of:
- snmp floor: os.read of every namespace's net/snmp (the cheapest file a default probe
  reads: what one more per-namespace read costs at least);
- tcprtt: the probe over every namespace (setns, netlink socket, two dumps, parse, points);
- tcpqueues: the existing /proc/<pid>/net/tcp{,6} walk, for comparison.
Prints medians, per-namespace cost, ratios to the floor and the share of one core at a
15 s interval, with the load average (2 shared cores: use the ratios).

    sudo .venv/bin/python bench/bench_tcprtt.py [--sizes 50 200] [--pairs 5] [--cycles 9]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import threading
import time

import benchpath  # noqa: F401  (the checkout on sys.path)

from otel_netreceiver.collectors.podnet.probes import Target, tcpqueues
from otel_netreceiver.collectors.podnet.tcprtt import tcprtt
from otel_netreceiver.sockdiag.netlink import _setns
from tests.support.pods import reap, spawn_bare_namespaces


def _connect_inside(pids: list[int], pairs: int) -> list[socket.socket]:
    """``pairs`` loopback connections in each namespace, made from a thread that moves."""
    held: list[socket.socket] = []

    def work() -> None:
        for pid in pids:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            _setns(fd)
            os.close(fd)
            os.system("ip link set lo up")  # this thread's namespace: lo is down
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(pairs)
            for _ in range(pairs):
                client = socket.create_connection(server.getsockname())
                peer, _ = server.accept()
                client.sendall(b"x" * 100)
                peer.recv(100)
                held.extend((client, peer))
            server.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return held


def _snmp_floor(pids: list[int]) -> None:
    for pid in pids:
        fd = os.open(f"/proc/{pid}/net/snmp", os.O_RDONLY)
        while os.read(fd, 65536):
            pass
        os.close(fd)


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.thread_time()
    fn()
    return (time.thread_time() - start) * 1000


def measure(size: int, pairs: int, cycles: int) -> None:
    procs = spawn_bare_namespaces(size)
    try:
        time.sleep(0.5)
        pids = [p.pid for p in procs]
        held = _connect_inside(pids, pairs)
        targets = [Target("/proc", pid, (pid,), (("k8s.pod.uid", str(pid)),), None)
                   for pid in pids]
        points = sum(len(tcprtt(t)) for t in targets)
        runs: dict[str, list[float]] = {"snmp floor": [], "tcprtt": [], "tcpqueues": []}
        for _ in range(cycles):
            runs["snmp floor"].append(_timed(lambda: _snmp_floor(pids)))
            runs["tcprtt"].append(_timed(lambda: [tcprtt(t) for t in targets]))
            runs["tcpqueues"].append(_timed(lambda: [tcpqueues(Target("/proc", t.pid, t.pids,
                                                                      t.attributes, None))
                                                     for t in targets]))
        floor = statistics.median(runs["snmp floor"])
        print(f"netns {size}, {2 * pairs} established sockets each, {points} points, "
              f"load {os.getloadavg()[0]:.2f}")
        for name, values in runs.items():
            ms = statistics.median(values)
            print(f"  {name:<11} {ms:8.2f} ms/cycle  {ms / size * 1000:7.1f} us/netns  "
                  f"x{ms / floor:6.1f} floor  {ms / 15000 * 100:6.3f} % core @15s")
        for sock in held:
            sock.close()
    finally:
        reap(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=9)
    args = parser.parse_args()
    for size in args.sizes:
        measure(size, args.pairs, args.cycles)


if __name__ == "__main__":
    main()
