"""One read of every driver statistic of an interface: in-process ioctl versus `ethtool -S`.

Creates a veth pair (root), then times N full reads each way in the same process:
EthtoolReader over the SIOCETHTOOL ioctl (GSSET_INFO + GSTATS, names cached
after the first read, plus a cold read with GSTRINGS), and `ethtool -S` run as a
subprocess and parsed, as prometheus-ethtool-exporter does (REFERENCE.md). Prints
wall and CPU time per read and the ratio (issue 2's goal: at least 50x).

    python bench/bench_ethtool.py [--reads 2000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.transport import IoctlTransport


def _ethtool_s(iface: str) -> dict[str, int]:
    out = subprocess.run(["ethtool", "-S", iface], check=True, capture_output=True,
                         text=True).stdout
    return {n.strip(): int(v) for n, _, v in (line.rpartition(": ")
                                             for line in out.splitlines()[1:])}


def _time(fn, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    children = os.times()
    for _ in range(n):
        fn()
    after = os.times()
    child_cpu = (after.children_user + after.children_system
                 - children.children_user - children.children_system)
    return ((time.perf_counter() - wall) / n, (time.process_time() - cpu + child_cpu) / n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    a, b = f"onrb{os.getpid() % 10000}a", f"onrb{os.getpid() % 10000}b"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    try:
        transport = IoctlTransport()
        warm = EthtoolReader(transport)
        first = warm.read_stats(a)
        assert first == _ethtool_s(a), "in-process read differs from ethtool -S"
        cold_wall, cold_cpu = _time(lambda: EthtoolReader(transport).read_stats(a), args.reads)
        warm_wall, warm_cpu = _time(lambda: warm.read_stats(a), args.reads)
        sub_n = max(args.reads // 10, 50)
        sub_wall, sub_cpu = _time(lambda: _ethtool_s(a), sub_n)
        transport.close()
    finally:
        subprocess.run(["ip", "link", "del", a], check=False)
    print(f"interface: veth ({len(first)} stats), reads: {args.reads} in-process, "
          f"{sub_n} via subprocess")
    print(f"in-process, names cached (2 ioctls): {warm_wall * 1e6:8.1f} us wall "
          f"{warm_cpu * 1e6:8.1f} us CPU per read")
    print(f"in-process, cold (3 ioctls):         {cold_wall * 1e6:8.1f} us wall "
          f"{cold_cpu * 1e6:8.1f} us CPU per read")
    print(f"ethtool -S subprocess + parse:       {sub_wall * 1e6:8.1f} us wall "
          f"{sub_cpu * 1e6:8.1f} us CPU per read")
    print(f"ratio subprocess / in-process (cached): {sub_wall / warm_wall:.0f}x wall, "
          f"{sub_cpu / warm_cpu:.0f}x CPU")
    print(f"ratio subprocess / in-process (cold):   {sub_wall / cold_wall:.0f}x wall")


if __name__ == "__main__":
    main()
