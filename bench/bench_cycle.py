"""The agent's CPU time per collection cycle on this machine, against the raw-read floor.

One cycle = every default collector collects (ENA through the replayed AWS sample,
parsed by the same code as a live ioctl read; netdev from this host's /proc; the
generic ethtool collector over this host's interfaces, ioctl included), the store
updates, and the snapshot is encoded as an OTLP request (not sent). The floor,
measured in the same process, is the I/O alone: reading /proc/1/net/dev and the
ioctl calls of every interface, without parsing or encoding.

    python bench/bench_cycle.py [--cycles 200] [--interval 15]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from otel_netreceiver.collectors.ena import EnaCollector
from otel_netreceiver.collectors.ethtool_source import EthtoolSource
from otel_netreceiver.collectors.ethtool_stats import EthtoolStatsCollector
from otel_netreceiver.collectors.interfaces import list_interfaces
from otel_netreceiver.collectors.netdev import NetdevCollector
from otel_netreceiver.config.schema import EnaConfig, EthtoolConfig, NetdevConfig
from otel_netreceiver.ethtool import structs
from otel_netreceiver.ethtool.transport import EthtoolError, IoctlTransport
from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.runtime.store import SeriesStore

SAMPLE = Path(__file__).parent.parent / "otel_netreceiver/ethtool/recordings/aws-ena-sample.json"


def agent_cycle_cost(cycles: int) -> tuple[float, int, int]:
    collectors = [
        EnaCollector(EnaConfig(), EthtoolSource.replay(str(SAMPLE))),
        NetdevCollector(NetdevConfig(), "/proc"),
        EthtoolStatsCollector(EthtoolConfig(enabled=True), EthtoolSource.live("/sys")),
    ]
    store, encoder = SeriesStore(), WireEncoder({"service.name": "bench"})
    size = points = 0
    started = time.thread_time()
    for _ in range(cycles):
        for collector in collectors:
            store.update(collector.collect())
        snapshot = store.snapshot()
        points = snapshot.point_count()
        size = len(encoder.encode(snapshot))
    elapsed = (time.thread_time() - started) / cycles
    for collector in collectors:
        collector.close()
    return elapsed, points, size


def floor_cost(cycles: int) -> float:
    """Raw I/O only: the netdev read and the three ethtool ioctls of every interface."""
    transport = IoctlTransport()
    names = [i.name for i in list_interfaces("/sys")]
    started = time.thread_time()
    for _ in range(cycles):
        fd = os.open("/proc/1/net/dev", os.O_RDONLY)
        os.read(fd, 65536)
        os.close(fd)
        for name in names:
            try:
                request = structs.pack_sset_info_request()
                count = structs.parse_sset_info(
                    transport.call(name, structs.ETHTOOL_GSSET_INFO, request))
                transport.call(name, structs.ETHTOOL_GSTATS, structs.pack_gstats_request(count))
            except EthtoolError:
                continue
    elapsed = (time.thread_time() - started) / cycles
    transport.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--interval", type=float, default=15.0)
    args = parser.parse_args()
    floor = floor_cost(args.cycles)
    cost, points, size = agent_cycle_cost(args.cycles)
    print(f"cycle: {points} points, {size:,} bytes of OTLP per cycle")
    print(f"floor (raw reads only):        {floor * 1e6:9.1f} us CPU per cycle")
    print(f"agent (read+parse+store+OTLP): {cost * 1e6:9.1f} us CPU per cycle "
          f"({cost / points * 1e6:.2f} us/point)")
    print(f"ratio agent / floor: {cost / floor:.1f}x")
    print(f"at a {args.interval:g} s interval: {cost / args.interval * 100:.4f}% of one core")


if __name__ == "__main__":
    main()
