"""One read of every driver statistic of an interface: in-process ioctl versus `ethtool -S`.

Why: peers run `ethtool` as a subprocess per interface per scrape
(prometheus-ethtool-exporter, the EKS network guide); the agent reads in-process and
the issue's goal is at least 50x cheaper. Creates a veth pair (root; removed
afterwards), checks that both ways see the same stats, then times in the same
process:

- warm: EthtoolReader with names cached (GSSET_INFO + GSTATS), the steady state;
- cold: a fresh EthtoolReader per read (GSSET_INFO + GSTRINGS + GSTATS);
- `ethtool -S` run as a subprocess and its output parsed.

Prints wall and CPU (this process plus children) per read, and the ratios.

    python bench/bench_ethtool.py [--reads 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.recording import parse_ethtool_s
from otel_netreceiver.ethtool.transport import IoctlTransport


def _ethtool_s(ethtool: str, iface: str) -> dict[str, int]:
    out = subprocess.run([ethtool, "-S", iface], check=True, capture_output=True, text=True)
    return dict(parse_ethtool_s(out.stdout))


def _time(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """Seconds per call: (wall, CPU of this process and of its finished children).

    process_time() for our own CPU (os.times() ticks at 10 ms, too coarse for
    microsecond reads); os.times() for the children, which take milliseconds each.
    """
    children = os.times()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = os.times()
    cpu += (after.children_user - children.children_user
            + after.children_system - children.children_system)
    return wall / n, cpu / n


def _measure(iface: str, reads: int, ethtool: str) -> dict[str, tuple[float, float]]:
    with IoctlTransport() as transport:
        warm = EthtoolReader(transport)
        if warm.read_stats(iface) != _ethtool_s(ethtool, iface):
            raise SystemExit("in-process read differs from `ethtool -S`: not benchmarking")
        return {
            "warm": _time(lambda: warm.read_stats(iface), reads),
            "cold": _time(lambda: EthtoolReader(transport).read_stats(iface), reads),
            "subprocess": _time(lambda: _ethtool_s(ethtool, iface), reads),
        }


def _report(iface: str, n_stats: int, reads: int, r: dict[str, tuple[float, float]]) -> None:
    print(f"machine: Linux {platform.release()}, Python {platform.python_version()}")
    print(f"interface: veth {iface} ({n_stats} stats); {reads} reads each way")
    labels = {"warm": "in-process, names cached (GSSET_INFO+GSTATS)",
              "cold": "in-process, cold (GSSET_INFO+GSTRINGS+GSTATS)",
              "subprocess": "ethtool -S subprocess + parse"}
    for key, label in labels.items():
        wall, cpu = r[key]
        print(f"{label:47s} {wall * 1e6:9.1f} us wall {cpu * 1e6:9.1f} us CPU per read")
    sub_wall, sub_cpu = r["subprocess"]
    for key in ("warm", "cold"):
        wall, cpu = r[key]
        cpu_ratio = f"{sub_cpu / cpu:6.0f}x CPU" if cpu else "(CPU below clock resolution)"
        print(f"ratio subprocess / in-process {key}: {sub_wall / wall:6.0f}x wall {cpu_ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    ethtool = shutil.which("ethtool")
    if os.geteuid() != 0 or ethtool is None:
        print("needs root (to create a veth pair) and ethtool on PATH", file=sys.stderr)
        return 2
    a, b = f"onrb{os.getpid() % 10000}a", f"onrb{os.getpid() % 10000}b"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    try:
        subprocess.run(["ip", "link", "set", a, "up"], check=True)
        results = _measure(a, args.reads, ethtool)
        n_stats = len(_ethtool_s(ethtool, a))
    finally:
        subprocess.run(["ip", "link", "del", a], check=False)
    _report(a, n_stats, args.reads, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
