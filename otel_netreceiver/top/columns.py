"""The columns of ``top``, as data: which series feed a column and how they combine.

A column is a table entry, not code: metric names with attribute filters, summed per row
(one row per pod, the host namespace, namespaces no pod owns, and the node), and either a
rate over the last interval or the p99 of the interval's histogram. A column whose probe
does not exist yet on a node (``optional``) is shown only when the snapshot holds one of
its series, so future probes appear in ``top`` by adding a row here.

``fallback`` sources are read only when no ``sources`` metric of the same scope (pod or
node, from the catalogue) is in the snapshot at all, e.g. the eBPF drop reasons when the
probe is loaded, the interfaces' drop counters when it is not. Deciding per snapshot,
not per row, keeps one meaning per column on a node.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_netreceiver.model import Attributes

IFACE, DIRECTION = "network.interface.name", "network.io.direction"
RATE, P99 = "rate", "p99"


@dataclass(frozen=True, slots=True)
class Source:
    """Series of one metric whose attributes include all of ``where`` and none of ``unless``."""

    metric: str
    where: Attributes = ()
    unless: Attributes = ()

    def matches(self, attributes: Attributes) -> bool:
        return (all(pair in attributes for pair in self.where)
                and not any(pair in attributes for pair in self.unless))


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the table.

    ``scale`` turns the per-second rate (or seconds, for P99) into the shown unit;
    ``top_attribute`` names the attribute whose busiest value is shown beside the number
    (the top drop reason); ``priority`` decides which columns a narrow terminal keeps
    (lower first).
    """

    key: str
    title: str
    unit: str
    sources: tuple[Source, ...]
    fallback: tuple[Source, ...] = ()
    aggregate: str = RATE
    scale: float = 1.0
    top_attribute: str = ""
    optional: bool = False
    priority: int = 50

    def __post_init__(self) -> None:
        if self.aggregate not in (RATE, P99):
            raise ValueError(f"column {self.key}: aggregate {self.aggregate!r} is not "
                             f"{RATE!r} or {P99!r}")
        if not self.sources:
            raise ValueError(f"column {self.key}: needs at least one source")


def _io(metric: str, direction: str) -> Source:
    return Source(metric, ((DIRECTION, direction),), ((IFACE, "lo"),))


COLUMNS: tuple[Column, ...] = (
    Column("pkts_in", "pkt in/s", "{packet}/s",
           (_io("netreceiver.pod.network.packets", "receive"),
            _io("system.network.packet.count", "receive")), priority=10),
    Column("pkts_out", "pkt out/s", "{packet}/s",
           (_io("netreceiver.pod.network.packets", "transmit"),
            _io("system.network.packet.count", "transmit")), priority=11),
    Column("drops", "drops/s", "{packet}/s",
           (Source("netreceiver.pod.packet.drops"), Source("netreceiver.packet.drop_sites")),
           fallback=(Source("netreceiver.pod.network.dropped"),
                     Source("system.network.packet.dropped")),
           top_attribute="drop.reason", priority=1),
    Column("rst_out", "rst sent/s", "{segment}/s",
           (Source("netreceiver.pod.tcp.resets", (("tcp.reset.direction", "sent"),)),),
           fallback=(Source("netreceiver.tcp.out_rsts"),), priority=3),
    Column("rst_in", "rst rcvd/s", "{segment}/s",
           (Source("netreceiver.pod.tcp.resets", (("tcp.reset.direction", "received"),)),),
           priority=4),
    Column("retrans", "retrans/s", "{segment}/s", (Source("netreceiver.tcp.retrans_segs"),),
           fallback=(Source("netreceiver.pod.tcp.retransmits"),), priority=2),
    Column("listen_ovf", "lst ovf/s", "{connection}/s",
           (Source("netreceiver.tcp.listen_overflows"),), priority=5),
    Column("udp_rcvbuf", "udp buf/s", "{datagram}/s",
           (Source("netreceiver.udp.rcvbuf_errors"), Source("netreceiver.udp6.rcvbuf_errors")),
           priority=6),
    Column("throttled", "thrtl ms/s", "ms/s", (Source("netreceiver.pod.cpu.throttled_time"),),
           scale=1000.0, priority=7),
    Column("dns_timeouts", "DNS timeouts/s", "{query}/s",
           (Source("netreceiver.pod.dns.timeouts"),), optional=True, priority=8),
    Column("linklocal", "link-local pkt/s", "{packet}/s",  # what counts against the ENI
           (Source("netreceiver.pod.linklocal.packets", (("linklocal.answered_by", "eni"),)),),
           optional=True, priority=9),
    Column("cross_zone", "x-zone pkt/s", "{packet}/s",
           (Source("netreceiver.pod.peer.packets", (("peer.class", "other_zone"),)),),
           optional=True, priority=12),
    Column("internet", "internet pkt/s", "{packet}/s",
           (Source("netreceiver.pod.peer.packets", (("peer.class", "internet"),)),),
           optional=True, priority=13),
    Column("softirq_p99", "softirq p99", "ms",
           (Source("netreceiver.softirq.latency", (("softirq.vector", "NET_RX"),
                                                   ("softirq.phase", "schedule"))),),
           aggregate=P99, scale=1000.0, priority=20),
    Column("txlat_p99", "tx p99", "ms", (Source("netreceiver.netif.tx.latency",
                                                 unless=((IFACE, "lo"),)),),
           aggregate=P99, scale=1000.0, priority=21),
)


def column(key: str, columns: tuple[Column, ...] = COLUMNS) -> Column:
    """The column called ``key``; a KeyError lists the ones there are."""
    for candidate in columns:
        if candidate.key == key:
            return candidate
    raise KeyError(f"no column {key!r}; columns: {', '.join(c.key for c in columns)}")
