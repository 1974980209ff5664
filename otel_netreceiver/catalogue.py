"""The one catalogue of every metric the agent emits.

Collectors look their definitions up here by name; ``docs/metrics.md`` is
generated from this table and the tests check ``deploy/`` rules against it.
Add a row here before a collector emits a new metric.
"""

from __future__ import annotations

from collections.abc import Iterable

from otel_netreceiver.model import Kind, MetricDef, Scope

_C, _G, _H = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM

IFACE = "network.interface.name"
DIRECTION = "network.io.direction"
ENI = "aws.eni.id"

# name, kind, unit, attributes, source, description
_ROWS: tuple[tuple[str, Kind, str, tuple[str, ...], str, str], ...] = (
    # --- ENA (seed 000; driver amzn-drivers ena_ethtool.c) -------------------
    ("aws.ena.allowance.exceeded", _C, "{packet}", ("aws.ena.allowance", IFACE, ENI), "ena",
     "Packets shaped or dropped because an EC2 allowance was exceeded, cumulative since the "
     "driver's last reset. aws.ena.allowance: bw_in, bw_out, pps, conntrack (per instance) or "
     "linklocal (per ENI: DNS, IMDS, Time Sync at 1024 packets/s)."),
    ("aws.ena.conntrack.allowance.available", _G, "{connection}", (IFACE, ENI), "ena",
     "Tracked connections the instance can still establish before reaching its conntrack "
     "allowance (Nitro, driver >= 2.8.1)."),
    ("aws.ena.srd.mode", _G, "1", (IFACE, ENI), "ena",
     "ENA Express (SRD) mode bitmask as reported by the driver (0 = off)."),
    ("aws.ena.srd.packets", _C, "{packet}", (DIRECTION, IFACE, ENI), "ena",
     "Packets sent or received over ENA Express (SRD)."),
    ("aws.ena.srd.eligible_packets", _C, "{packet}", (IFACE, ENI), "ena",
     "Transmitted packets that were eligible for ENA Express (SRD)."),
    ("aws.ena.srd.resource.utilization", _G, "%", (IFACE, ENI), "ena",
     "Percentage of the ENA Express resources in use."),
    ("node_net_ethtool", _G, "", ("device", "type"), "ena",
     "Compatibility gauge in prometheus-ethtool-exporter naming (seed 000's rules query it); "
     "disable with collectors.ena.compat_node_net_ethtool: false."),
    # --- generic ethtool driver statistics (opt-in) ------------------------------
    ("netreceiver.ethtool.stat", _G, "", (IFACE, "ethtool.driver", "ethtool.stat"), "ethtool",
     "A driver statistic from `ethtool -S`, as a gauge: drivers do not say which are counters."),
    # --- host network interfaces (/proc/net/dev of the host namespace) -----------
    ("system.network.io", _C, "By", (IFACE, DIRECTION), "netdev",
     "Bytes received and transmitted by each interface of the host network namespace."),
    ("system.network.packet.count", _C, "{packet}", (IFACE, DIRECTION), "netdev",
     "Packets received and transmitted by each interface."),
    ("system.network.errors", _C, "{error}", (IFACE, DIRECTION), "netdev",
     "Receive and transmit errors of each interface."),
    ("system.network.packet.dropped", _C, "{packet}", (IFACE, DIRECTION), "netdev",
     "Packets dropped on receive or transmit by each interface."),
    # --- the agent's own telemetry -----------------------------------------------
    ("netreceiver.collector.duration", _G, "s", ("collector",), "self",
     "Wall time of the collector's last cycle."),
    ("netreceiver.collector.cycles", _C, "{cycle}", ("collector",), "self",
     "Cycles run by each collector."),
    ("netreceiver.collector.errors", _C, "{error}", ("collector",), "self",
     "Cycles of each collector that failed or reported an error (one vanished object is not one)."),
    ("netreceiver.collector.cpu.time", _C, "s", ("collector",), "self",
     "CPU time (thread time) spent by each collector."),
    ("netreceiver.series.exported", _G, "{series}", ("instrument",), "self",
     "Series of each instrument in the last export (seed 004: watch the agent's own volume)."),
    ("netreceiver.series.dropped", _C, "{series}", ("instrument",), "self",
     "Series refused because the instrument reached its cardinality cap."),
    ("netreceiver.export.failures", _C, "{export}", ("exporter",), "self",
     "Exports that failed, per exporter."),
    ("netreceiver.export.points", _C, "{point}", ("exporter",), "self",
     "Data points successfully exported, per exporter."),
    ("netreceiver.export.bytes", _C, "By", ("exporter",), "self",
     "Encoded (uncompressed) bytes of successful exports, per exporter."),
    ("netreceiver.process.cpu.time", _C, "s", (), "self",
     "CPU time of the agent process (user + system)."),
    ("netreceiver.process.memory.rss", _G, "By", (), "self",
     "Resident memory of the agent process."),
    ("netreceiver.config.reloads", _C, "{reload}", ("result",), "self",
     "Configuration reloads, by result: applied or rejected (the last good one kept running)."),
)

CATALOGUE: dict[str, MetricDef] = {
    name: MetricDef(name, kind, unit, desc, attributes, Scope.NODE, source)
    for name, kind, unit, attributes, source, desc in _ROWS
}


def metric(name: str) -> MetricDef:
    """The definition of ``name``; a KeyError names the missing row."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in otel_netreceiver/catalogue.py") from None


def by_source(source: str) -> Iterable[MetricDef]:
    return (m for m in CATALOGUE.values() if m.source == source)
