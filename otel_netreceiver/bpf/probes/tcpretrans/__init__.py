"""tcpretrans: tcp:tcp_retransmit_skb per pod and socket state, and (collectors.ebpf.
retrans_peers > 0) per pod and remote endpoint; event type TCP_RETRANS (off by default)."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.probe import EventType, MetricRow, Probe
from otel_netreceiver.bpf.programs import INET_FIELDS, Attach, Formats, ProbeSpec, StructSpec
from otel_netreceiver.bpf.readers import NetnsLabels, definition, with_attrs
from otel_netreceiver.bpf.tracefs import TracepointFormat
from otel_netreceiver.kernel_abi import AF_INET, tcp_state_name
from otel_netreceiver.model import Attributes, Kind, Point

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps
    from otel_netreceiver.events.model import Record

RETRANS, BY_PEER = "netreceiver.pod.tcp.retransmits", "netreceiver.pod.tcp.retransmits.by_peer"
# tcp:tcp_retransmit_skb's remote endpoint (include/trace/events/tcp.h, since Linux 4.16)
PEER_FIELDS = ("family", "dport", "daddr", "daddr_v6")


def retrans_peer_limit(fmt: TracepointFormat | None, wanted: int) -> int:
    """RETRANS_PEERS for this kernel: 0 when its tracepoint lacks the endpoint fields."""
    if wanted <= 0 or fmt is None or not all(fmt.field(f) for f in PEER_FIELDS):
        return 0
    return wanted


def defines(formats: Formats, config: Any) -> dict[str, int]:
    """RETRANS_PEERS from collectors.ebpf.retrans_peers, for this kernel's tracepoint."""
    return {"RETRANS_PEERS": retrans_peer_limit(formats.get(("tcp", "tcp_retransmit_skb")),
                                                config.retrans_peers)}


def retrans_points(items: Iterable[tuple[int, int, int]], labels: NetnsLabels) -> list[Point]:
    metric = definition(RETRANS)
    totals: defaultdict[Attributes, int] = defaultdict(int)
    for netns, state, count in items:
        totals[with_attrs(labels(netns), **{"tcp.state": tcp_state_name(state)})] += count
    return [Point(metric, a, count) for a, count in totals.items()]


def peer_address(family: int, raw: bytes | Sequence[int]) -> str:
    """The remote address of a retransmission key (AF_INET: the first 4 bytes)."""
    data = bytes(raw)
    if family == AF_INET:
        return str(ipaddress.IPv4Address(data[:4]))
    address = ipaddress.IPv6Address(data[:16])
    return str(address.ipv4_mapped or address)


def retrans_peer_points(items: Iterable[tuple[int, int, int, Sequence[int], int]],
                        labels: NetnsLabels) -> list[Point]:
    """(netns, family, dport, daddr, count) → per-pod retransmissions per remote endpoint."""
    metric = definition(BY_PEER)
    totals: defaultdict[Attributes, int] = defaultdict(int)
    for netns, family, dport, daddr, count in items:
        peer = {"network.peer.address": peer_address(family, daddr),
                "network.peer.port": str(dport)}
        totals[with_attrs(labels(netns), **peer)] += count
    return [Point(metric, a, count) for a, count in totals.items()]


def read(maps: ProbeMaps) -> list[Point]:
    points = retrans_points(maps.netns_items("retrans", ("netns", "state")), maps.labels)
    if maps.built.get("RETRANS_PEERS"):
        rows = maps.netns_items("retrans_peers", ("netns", "family", "dport", "daddr"))
        points += retrans_peer_points(rows, maps.labels)
    return points


def event_attributes(record: Record) -> dict[str, str]:
    return {"tcp.state": tcp_state_name(record.state)}


PROBE = Probe(
    "tcpretrans",
    ProbeSpec("tcpretrans", "counting.c",
              (Attach("tcp", "tcp_retransmit_skb", "on_retransmit"),),
              (StructSpec("ARGS_STRUCT", "tcp", "tcp_retransmit_skb", "retransmit_args",
                          ("skaddr", "state"), optional=PEER_FIELDS),),
              package=__name__, defines=defines),
    read,
    (MetricRow(BY_PEER, Kind.COUNTER, "{segment}",
               ("network.peer.address", "network.peer.port"),
               "TCP segments retransmitted per remote endpoint (opt-in: "
               "collectors.ebpf.retrans_peers caps the endpoints tracked node-wide; those past "
               "the cap count in netreceiver.bpf.lost).", pod=True),
     MetricRow(RETRANS, Kind.COUNTER, "{segment}", ("tcp.state",),
               "TCP segments retransmitted (tcp:tcp_retransmit_skb), by socket state (probe "
               "tcpretrans).", pod=True)),
    default=True,
    events=ProbeSpec("tcpretrans", "events.c",
                     (Attach("tcp", "tcp_retransmit_skb", "ev_on_retransmit"),),
                     (StructSpec("ARGS_STRUCT", "tcp", "tcp_retransmit_skb", "retransmit_args",
                                 ("skaddr", "state", *INET_FIELDS)),),
                     package=__name__),
    event_types=(EventType("TCP_RETRANS", 9, "INFO", False, attributes=event_attributes),),
)
