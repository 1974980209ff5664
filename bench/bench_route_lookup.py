"""Route lookups for the link-local egress interface: netns/egress.py against pyroute2.

netns/egress.py asks the kernel one RTM_GETROUTE per (namespace, service address) with its
own ~40 lines of rtnetlink packing. pyroute2 is the well-kept library for this; this bench
is why the agent does not depend on it: per-lookup CPU in the same process, alternating
rounds, and the cost of importing each into a fresh interpreter (time and resident memory, the
agent pays the import on every node). The lookups are the node's own routes (no namespace
or privilege needed): the default route's destination and 127.0.0.1, as egress.py asks
them (destination only, and with a source and input interface as for a pod's packet).

    pip install --target /tmp/pyroute2-lib pyroute2
    PYTHONPATH=/tmp/pyroute2-lib .venv/bin/python bench/bench_route_lookup.py [--lookups 3000]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import benchpath  # noqa: F401  (the checkout on sys.path)

from otel_netreceiver.netns.egress import RouteLookup

TARGETS = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("127.0.0.1"))
ROUNDS = 5


def ours() -> Callable[[], int | None]:
    lookup = RouteLookup()

    def one() -> int | None:
        out = None
        for dst in TARGETS:
            out = lookup.oif(dst)
        return out
    return one


def theirs() -> Callable[[], int | None]:
    from pyroute2 import IPRoute  # type: ignore[import-not-found]

    ipr = IPRoute()

    def one() -> int | None:
        out = None
        for dst in TARGETS:
            try:
                reply = ipr.route("get", dst=str(dst))
            except Exception:  # unreachable: None, as egress.py answers
                continue
            out = reply[0].get_attr("RTA_OIF") if reply else None
        return out
    return one


def per_lookup_us(fn: Callable[[], int | None], lookups: int) -> float:
    start = time.thread_time_ns()
    for _ in range(lookups // len(TARGETS)):
        fn()
    return (time.thread_time_ns() - start) / 1000 / lookups


# VmRSS, not ru_maxrss: the kernel updates the high-water mark lazily (mm hiwater_rss)
IMPORT_PROBE = """
import sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss()
start = time.perf_counter()
{statement}
took = time.perf_counter() - start
print(took * 1000, (rss() - before) / 1024, len(sys.modules))
"""


def import_cost(statement: str) -> tuple[float, float, int]:
    """Median import time (ms), resident MB added and modules loaded (fresh interpreters)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    runs = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(statement=statement)],
                             capture_output=True, text=True, check=True, env=env).stdout.split()
        runs.append((float(out[0]), float(out[1]), int(out[2])))
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            runs[0][2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=3000)
    args = parser.parse_args()
    try:
        import pyroute2  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        sys.exit("pyroute2 is not importable: pip install --target /tmp/pyroute2-lib pyroute2, "
                 "then PYTHONPATH=/tmp/pyroute2-lib")
    a, b = ours(), theirs()
    if a() != b():
        sys.exit(f"the two disagree on the interface: {a()} vs {b()}")
    samples: dict[str, list[float]] = {"egress.py": [], "pyroute2": []}
    for _ in range(ROUNDS):
        samples["egress.py"].append(per_lookup_us(a, args.lookups))
        samples["pyroute2"].append(per_lookup_us(b, args.lookups))
    print(f"{args.lookups} lookups per round, {ROUNDS} alternating rounds, "
          f"interface {a()} ({socket.if_indextoname(a() or 1)})")
    med = {k: statistics.median(v) for k, v in samples.items()}
    for name, value in med.items():
        rounds = " ".join(f"{v:.1f}" for v in samples[name])
        print(f"{name:10} {value:8.1f} us CPU per lookup   (rounds {rounds})")
    print(f"ratio pyroute2 / egress.py: {med['pyroute2'] / med['egress.py']:.1f}x")
    for label, statement in (("egress.py", "import otel_netreceiver.netns.egress"),
                             ("pyroute2", "import pyroute2; pyroute2.IPRoute().close()")):
        took, rss, modules = import_cost(statement)
        print(f"import {label:10} {took:7.1f} ms  +{rss:5.1f} MB RSS  {modules} modules")


if __name__ == "__main__":
    main()
