"""Generic driver statistics (``ethtool -S``) of any interface, opt-in.

Off by default: drivers expose hundreds of per-queue stats (node_exporter's
ethtool collector once produced 10k of a host's 17k series that way:
prometheus/node_exporter issue tracker), so names are filtered by include/exclude patterns and
per-queue/per-CPU stats are excluded unless asked for.
"""

from __future__ import annotations

import time

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.ethtool_source import EthtoolSource, InterfaceStats
from otel_netreceiver.collectors.interfaces import matches
from otel_netreceiver.config.schema import EthtoolConfig
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs


def stat_points(read: InterfaceStats, config: EthtoolConfig) -> list[Point]:
    definition = metric("netreceiver.ethtool.stat")
    return [
        Point(definition, attrs({"network.interface.name": read.interface.name,
                                 "ethtool.driver": read.driver, "ethtool.stat": name}), value)
        for name, value in read.stats.items()
        if matches(name, config.include_stats, config.exclude_stats)
    ]


class EthtoolStatsCollector:
    name = "ethtool"

    def __init__(self, config: EthtoolConfig, source: EthtoolSource) -> None:
        self._config, self._source = config, source

    def _wanted(self, name: str, driver: str) -> bool:
        return bool(driver) and matches(name, self._config.interfaces,
                                        self._config.exclude_interfaces)

    def collect(self) -> Collection:
        reads = self._source.read(self._wanted)
        points = [p for read in reads.interfaces for p in stat_points(read, self._config)]
        return Collection(self.name, tuple(points), time.time_ns(), reads.errors)

    def probe(self) -> ProbeStatus:
        seen = [n for n, d in self._source.drivers().items() if self._wanted(n, d)]
        if seen:
            return ProbeStatus(self.name, True, f"interfaces: {', '.join(seen)}")
        return ProbeStatus(self.name, False, "no interface matches collectors.ethtool.interfaces "
                           "with a driver that answers ethtool")

    def close(self) -> None:
        self._source.close()
