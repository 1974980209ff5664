"""Host interface counters from ``/proc/1/net/dev`` (read → parse → emit).

The parser (procfs/netdev.py) is shared with the per-pod collector: the file has
the same layout in every network namespace (net/core/net-procfs.c).
"""

from __future__ import annotations

import time
from pathlib import Path

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.interfaces import matches
from otel_netreceiver.config.schema import NetdevConfig
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs
from otel_netreceiver.procfs.netdev import NetDevCounters, parse_net_dev

_EMIT = (("system.network.io", "bytes"), ("system.network.packet.count", "packets"),
         ("system.network.errors", "errs"), ("system.network.packet.dropped", "drop"))


def netdev_points(counters: tuple[NetDevCounters, ...], exclude: list[str]) -> list[Point]:
    points = []
    for dev in counters:
        if not matches(dev.interface, (), exclude):
            continue
        for direction, values in (("receive", dev.rx), ("transmit", dev.tx)):
            a = attrs({"network.interface.name": dev.interface, "network.io.direction": direction})
            points.extend(Point(metric(name), a, values[field]) for name, field in _EMIT)
    return points


class NetdevCollector:
    """Counters of the host network namespace (that of PID 1 under the given /proc)."""

    name = "netdev"

    def __init__(self, config: NetdevConfig, proc_root: str) -> None:
        self._config = config
        self._path = Path(proc_root, "1", "net", "dev")

    def collect(self) -> Collection:
        text = self._path.read_text()
        counters = parse_net_dev(text, str(self._path))
        return Collection.of(self.name, netdev_points(counters, self._config.exclude_interfaces),
                             time.time_ns())

    def probe(self) -> ProbeStatus:
        if self._path.is_file():
            return ProbeStatus(self.name, True, f"reading {self._path}")
        return ProbeStatus(self.name, False, f"{self._path} is not readable")

    def close(self) -> None:
        pass
