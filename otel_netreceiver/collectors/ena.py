"""AWS ENA allowance counters, read through the SIOCETHTOOL ioctl.

What they mean: docs/background.md, "ENA allowance counters".

read:  ethtool/reader.py (ioctl, or a recording replayed through the same parser)
parse: ``parse_ena_stats`` maps the driver's stat names (amzn-drivers
       ena_ethtool.c, ``ena_stats_eni_strings``) to frozen data
emit:  ``ena_points`` turns that into catalogue points

Each read makes the device run an admin command under RTNL (docs/background.md), so
this collector reads once per cycle and the interval floor is 1 s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.base import Traits
from otel_netreceiver.collectors.ethtool_source import EthtoolSource, InterfaceStats
from otel_netreceiver.collectors.interfaces import matches
from otel_netreceiver.config.schema import EnaConfig
from otel_netreceiver.model import Attributes, Collection, Point, ProbeStatus, attrs

ENA_DRIVER = "ena"

# ethtool stat name → value of the aws.ena.allowance attribute.
ALLOWANCES = {
    "bw_in_allowance_exceeded": "bw_in",
    "bw_out_allowance_exceeded": "bw_out",
    "pps_allowance_exceeded": "pps",
    "conntrack_allowance_exceeded": "conntrack",
    "linklocal_allowance_exceeded": "linklocal",
}
CONNTRACK_AVAILABLE = "conntrack_allowance_available"
# ENA Express stats (driver >= 2.10): name → (metric, fixed attributes)
_SRD: dict[str, tuple[str, Attributes]] = {
    "ena_srd_mode": ("aws.ena.srd.mode", ()),
    "ena_srd_tx_pkts": ("aws.ena.srd.packets", (("network.io.direction", "transmit"),)),
    "ena_srd_rx_pkts": ("aws.ena.srd.packets", (("network.io.direction", "receive"),)),
    "ena_srd_eligible_tx_pkts": ("aws.ena.srd.eligible_packets", ()),
    "ena_srd_resource_utilization": ("aws.ena.srd.resource.utilization", ()),
}
_COMPAT_TYPES = (*ALLOWANCES, CONNTRACK_AVAILABLE)


@dataclass(frozen=True, slots=True)
class EnaStats:
    """The ENA statistics this project exports; absent ones stay absent (old drivers)."""

    allowances: dict[str, int] = field(default_factory=dict)
    conntrack_available: int | None = None
    srd: dict[str, int] = field(default_factory=dict)


def parse_ena_stats(stats: Mapping[str, int]) -> EnaStats:
    """Pick the allowance, conntrack and ENA Express stats out of all ENA stats, by name."""
    return EnaStats(
        allowances={short: stats[name] for name, short in ALLOWANCES.items() if name in stats},
        conntrack_available=stats.get(CONNTRACK_AVAILABLE),
        srd={name: stats[name] for name in _SRD if name in stats},
    )


def ena_points(iface: str, eni: str | None, ena: EnaStats, raw: Mapping[str, int],
               compat: bool) -> list[Point]:
    """Catalogue points for one ENA interface."""
    base = {"network.interface.name": iface, "aws.eni.id": eni}
    points = [Point(metric("aws.ena.allowance.exceeded"),
                    attrs(base, **{"aws.ena.allowance": short}), value)
              for short, value in ena.allowances.items()]
    if ena.conntrack_available is not None:
        points.append(Point(metric("aws.ena.conntrack.allowance.available"), attrs(base),
                            ena.conntrack_available))
    for name, value in ena.srd.items():
        metric_name, extra = _SRD[name]
        points.append(Point(metric(metric_name), attrs({**base, **dict(extra)}), value))
    if compat:
        points.extend(Point(metric("node_net_ethtool"), attrs(device=iface, type=name), raw[name])
                      for name in _COMPAT_TYPES if name in raw)
    return points


class EnaCollector:
    """Every ENA interface of the host, or the interfaces of a replayed recording."""

    name = "ena"
    traits = Traits(refreshed=True)  # at most once a second: each read is a device command

    def __init__(self, config: EnaConfig, source: EthtoolSource,
                 eni_by_mac: Mapping[str, str] | None = None) -> None:
        self._config = config
        self._source = source
        self._eni_by_mac = dict(eni_by_mac or {})

    def collect(self) -> Collection:
        reads = self._source.read(self._wanted)
        points: list[Point] = []
        for read in reads.interfaces:
            points.extend(self._points(read))
        return Collection(self.name, tuple(points), time.time_ns(), reads.errors,
                          frozenset(_series_of(points, reads.replaced)))

    def _wanted(self, name: str, driver: str) -> bool:
        return driver == ENA_DRIVER and matches(name, self._config.interfaces)

    def _points(self, read: InterfaceStats) -> list[Point]:
        eni = self._eni_by_mac.get(read.interface.mac) if read.interface.mac else None
        return ena_points(read.interface.name, eni, parse_ena_stats(read.stats), read.stats,
                          self._config.compat_node_net_ethtool)

    def probe(self) -> ProbeStatus:
        seen = self._source.drivers()
        ena = [name for name, driver in seen.items() if self._wanted(name, driver)]
        where = self._source.describe()
        if ena:
            return ProbeStatus(self.name, True, f"ENA interfaces: {', '.join(ena)} ({where})")
        listing = ", ".join(f"{n}={d or 'no driver'}" for n, d in sorted(seen.items())) or "none"
        return ProbeStatus(self.name, False,
                           f"no ENA interface on this host ({where}; interfaces: {listing}); "
                           "the ENA allowance counters need an EC2 instance with the ena driver")

    def close(self) -> None:
        self._source.close()


def _series_of(points: list[Point], replaced: frozenset[str]) -> set[tuple[str, Attributes]]:
    """Series of interfaces that were recreated since the last cycle: they restart."""
    return {(p.metric.name, p.attributes) for p in points
            if dict(p.attributes).get("network.interface.name") in replaced
            or dict(p.attributes).get("device") in replaced}
