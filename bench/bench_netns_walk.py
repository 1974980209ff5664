"""Namespace resolution per collection cycle: one shared walk against one walk per user.

Creates 200 network namespaces (one `unshare --net sleep` each, as root), then replays
the calls one 15 s cycle makes to the resolver, with every user on: the per-pod
collector (t=0), the eBPF collector (t=0.8 s), the history sampler every second (the
node API on), and kernel events naming 20 records of known namespaces. Two setups, in
the same process, over the same namespaces:
- before: each user with its own resolver, walking /proc at each call (events only for
  an inode they do not know, at most once a second), as when every user built its own;
- shared: one resolver (walks serve 0.9 x interval, as runtime/agent.py sets it), the
  per-pod collector confirming each reused namespace's pid (NetnsResolver.still_in).
Prints CPU (thread time) and /proc walks per cycle, the ratio, and share of one core.

    sudo .venv/bin/python bench/bench_netns_walk.py [--namespaces 200] [--cycles 8]
"""

from __future__ import annotations

import argparse
import math
import time

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.events.source import PodLabels
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.netns.resolver import NetnsResolver
from tests.support.pods import reap, spawn_bare_namespaces

INTERVAL = 15.0
SHARE = 0.9  # runtime/agent.py WALK_SHARE


class Clock:
    """Simulated time: the replay runs a cycle's calls back to back."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def schedule(cycle: int) -> list[tuple[float, str]]:
    """(time, user) of one cycle's calls, in time order."""
    start = cycle * INTERVAL
    calls = [(start, "podnet"), (start + 0.8, "ebpf")]
    calls += [(start + k, "history") for k in range(int(INTERVAL))]
    calls += [(start + 0.5 + k * 0.7, "events") for k in range(20)]
    return sorted(calls)


def replay(users: dict[str, NetnsResolver], labels: PodLabels, clock: Clock,
           cycles: int, inodes: list[int]) -> tuple[float, int]:
    """CPU seconds and walks per cycle over ``cycles`` cycles (after one warm cycle)."""
    resolvers = {id(r): r for r in (*users.values(), labels.resolver)}
    for warm in (True, False):
        walks = sum(r.walks for r in resolvers.values())
        started = time.thread_time()
        for cycle in range(1 if warm else cycles):
            for k, (at, user) in enumerate(schedule(cycle + (0 if warm else 1))):
                clock.now = at
                if user == "events":
                    labels(inodes[k % len(inodes)])
                    continue
                resolver = users[user]
                before = resolver.walks
                entries = resolver.resolve()
                if user == "podnet" and resolver.walks == before:  # collector.py's check
                    for ns, _identity in entries.values():
                        resolver.still_in(ns)
        cpu = time.thread_time() - started
    return cpu / cycles, (sum(r.walks for r in resolvers.values()) - walks) // cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=8)
    args = parser.parse_args()
    procs = spawn_bare_namespaces(args.namespaces)
    time.sleep(0.5)
    try:
        clock = Clock()
        probe = NetnsResolver("/proc", NoPods())
        inodes = sorted(probe.resolve())
        own = {u: NetnsResolver("/proc", NoPods(), clock=clock)
               for u in ("podnet", "ebpf", "history")}
        events = NetnsResolver("/proc", NoPods(), math.inf, clock)  # walks for unknown inodes
        before = replay(own, PodLabels(events, clock), clock, args.cycles, inodes)
        clock = Clock()
        shared = NetnsResolver("/proc", NoPods(), SHARE * INTERVAL, clock)
        after = replay(dict.fromkeys(("podnet", "ebpf", "history"), shared),
                       PodLabels(shared, clock), clock, args.cycles, inodes)
    finally:
        reap(procs)
    print(f"{len(inodes)} namespaces, {INTERVAL:.0f} s cycle, users: podnet, ebpf, "
          f"history sampler (1 s), events (20 records)")
    print(f"{'setup':>8} {'CPU ms/cycle':>13} {'walks/cycle':>12} {'core %':>7}")
    for name, (cpu, walks) in (("before", before), ("shared", after)):
        print(f"{name:>8} {cpu * 1e3:>13.1f} {walks:>12} {cpu / INTERVAL * 100:>7.3f}")
    print(f"ratio before/shared: {before[0] / after[0]:.1f}x")


if __name__ == "__main__":
    main()
