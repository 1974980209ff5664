"""Per-pod collection cost for 50, 200 and 500 network namespaces, against the raw-read floor.

For each size, creates that many network namespaces (one `unshare --net sleep`
process each, as root), then measures CPU (thread time) per cycle of:
- floor: discovering namespaces (readlink of every /proc/<pid>/ns/net) and reading
  every file the default probes read, with os.read, no parsing;
- agent: PodNetCollector.collect (the same reads, parsing, attribution), the store
  update, the snapshot and the OTLP wire encoding of everything (exporting not sent).
Also prints points collected, series exported (quiet counters held back), OTLP
bytes per cycle, peak RSS, and the share of one core at a 15 s interval.

Two modes: idle (nothing happens in the namespaces: every file is byte-identical
from cycle to cycle) and busy (each namespace's loopback is up and, between
cycles, a helper thread that setns()es into each namespace in turn sends two UDP
datagrams there, one to a closed port and one to its own socket, so the counters
of dev, snmp and netstat move every cycle; the traffic is outside the measured
region, and thread time does not count the helper).

After the two warm cycles the heap is frozen out of the cyclic garbage collector,
as the agent does after its collectors' first cycle (runtime/agent.py);
``--no-freeze`` measures without.

    sudo .venv/bin/python bench/bench_podnet.py [--mode busy|idle|both] [--sizes 50 200 500]
        [--cycles 10] [--no-freeze]
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import gc
import os
import resource
import socket
import struct
import threading
import time

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.netns.discovery import discover
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.pods import reap, spawn_bare_namespaces

# what the default probes read (tcpqueues, which walks net/tcp{,6}, is off by default)
FILES = ("dev", "snmp", "netstat", "snmp6", "sockstat", "stat/nf_conntrack")


def floor_cycle() -> None:
    for ns in discover("/proc").values():
        for name in FILES:
            try:
                fd = os.open(f"/proc/{ns.pid}/net/{name}", os.O_RDONLY)
            except FileNotFoundError:
                continue
            while os.read(fd, 65536):
                pass
            os.close(fd)


_CLONE_NEWNET = 0x40000000
_SIOCSIFFLAGS = 0x8914
_IFF_UP_LOOPBACK_RUNNING = 0x1 | 0x8 | 0x40


class Traffic:
    """Two datagrams in each namespace, sent from a throwaway thread that setns()es around.

    A thread's network namespace is its own (setns(2) changes the calling thread
    only), so the measuring thread stays in the host's; each call runs in a new
    thread that is discarded afterwards.
    """

    def __init__(self, pids: list[int]) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fds = [os.open(f"/proc/{pid}/ns/net", os.O_RDONLY) for pid in pids]

    def _enter(self, fd: int) -> None:
        if self._libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")

    def _each(self, action) -> None:  # type: ignore[no-untyped-def]
        def run() -> None:
            for fd in self._fds:
                self._enter(fd)
                action()
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

    @staticmethod
    def _lo_up() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", _IFF_UP_LOOPBACK_RUNNING))

    @staticmethod
    def _send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.sendto(b"x" * 64, ("127.0.0.1", 9))  # closed port: NoPorts, ICMP unreachable
            s.sendto(b"y" * 64, s.getsockname())  # to itself: delivered

    def loopback_up(self) -> None:
        self._each(self._lo_up)

    def send(self) -> None:
        self._each(self._send)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)


def _timed(work, traffic: Traffic | None) -> float:  # type: ignore[no-untyped-def]
    """Thread CPU seconds of ``work()``, with the traffic (if any) sent just before."""
    if traffic is not None:
        traffic.send()
    started = time.thread_time()
    work()
    return time.thread_time() - started


def measure(cycles: int, traffic: Traffic | None, freeze: bool = True) -> dict[str, float]:
    collector = PodNetCollector(PodNetConfig(), "/proc", NoPods())
    store, encoder = SeriesStore(), WireEncoder({"service.name": "bench"})
    last: dict[str, int] = {}

    def agent_cycle() -> None:
        collection = collector.collect()
        store.update(collection)
        snapshot = store.snapshot()
        points = len(collection.points) + sum(len(b.keys) for b in collection.blocks)
        last.update(bytes=len(encoder.encode(snapshot)), points=points,
                    exported=snapshot.point_count())

    for _ in range(2):  # warm: identities cached, counters moved once, as in steady state
        _timed(agent_cycle, traffic)
    if freeze:  # as the agent does after its collectors' first cycle (runtime/agent.py)
        gc.freeze()
    floor = sum(_timed(floor_cycle, traffic) for _ in range(cycles)) / cycles
    agent = sum(_timed(agent_cycle, traffic) for _ in range(cycles)) / cycles
    return {"floor": floor, "agent": agent, **last}


TRAFFIC = """
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(50): u.sendto(b"x" * 100, ("127.0.0.1", 9))          # UDP to a closed port
srv = socket.socket(); srv.bind(("127.0.0.1", 8080)); srv.listen(64)
for _ in range(20):                                                   # connections, data
    c = socket.create_connection(("127.0.0.1", 8080)); s, _ = srv.accept()
    c.send(b"y" * 2000); s.recv(4096); c.close(); s.close()
for _ in range(10):                                                   # refused: resets
    try: socket.create_connection(("127.0.0.1", 1))
    except OSError: pass
"""


def busy_series(count: int = 5) -> float:
    """Exported series per namespace that carried UDP, TCP and resets (lo up via nsenter)."""
    import subprocess

    from tests.support.pods import _die_with_parent

    procs = [subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up; exec sleep 600"],
                              preexec_fn=_die_with_parent) for _ in range(count)]
    time.sleep(0.5)
    try:
        collector = PodNetCollector(PodNetConfig(), "/proc", NoPods())
        store = SeriesStore()
        store.update(collector.collect())
        for proc in procs:
            subprocess.run(["nsenter", "-t", str(proc.pid), "-n", "python3", "-c", TRAFFIC],
                           check=True)
        store.update(collector.collect())
        inodes = {os.readlink(f"/proc/{p.pid}/ns/net")[5:-1] for p in procs}
        exported = sum(1 for m in store.snapshot().metrics for pt in m.points
                       if dict(pt.attributes).get("netns.inode") in inodes)
    finally:
        reap(procs)
    return exported / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--mode", choices=("busy", "idle", "both"), default="both")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the warm heap in the cyclic GC (the agent freezes it)")
    args = parser.parse_args()
    print(f"{'mode':>4} {'netns':>6} {'floor ms':>9} {'agent ms':>9} {'ratio':>6} {'points':>7} "
          f"{'exported':>8} {'per ns':>7} {'OTLP KB':>8} {'core %':>7} {'RSS MB':>7}")
    modes = ("idle", "busy") if args.mode == "both" else (args.mode,)
    for size in args.sizes:
        for mode in modes:
            procs = spawn_bare_namespaces(size)
            time.sleep(0.5)
            traffic = Traffic([p.pid for p in procs]) if mode == "busy" else None
            try:
                if traffic is not None:
                    traffic.loopback_up()
                r = measure(args.cycles, traffic, not args.no_freeze)
                gc.unfreeze()
            finally:
                if traffic is not None:
                    traffic.close()
                reap(procs)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{mode:>4} {size:>6} {r['floor'] * 1e3:>9.1f} {r['agent'] * 1e3:>9.1f} "
                  f"{r['agent'] / r['floor']:>6.2f} {r['points']:>7} {r['exported']:>8} "
                  f"{r['exported'] / size:>7.1f} {r['bytes'] / 1024:>8.1f} "
                  f"{r['agent'] / args.interval * 100:>7.3f} {rss:>7.1f}", flush=True)
    print(f"series exported per quiet namespace: see 'per ns' above; per busy namespace "
          f"(UDP, TCP, resets): {busy_series():.1f}")


if __name__ == "__main__":
    main()
