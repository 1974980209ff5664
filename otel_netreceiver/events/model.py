"""Event records: the kernel's fixed record (bpf/programs/events.h) decoded into frozen data.

``decode_record`` turns the bytes of one perf sample into a ``Record`` (numbers
only); ``to_event`` names its parts (reason, TCP state, drop site, pod) from
lookups passed in, so both are pure and tested on bytes.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from otel_netreceiver.kernel_abi import AF_INET, AF_INET6, SOFTIRQ_VECTOR_NAMES, tcp_state_name
from otel_netreceiver.model import Attributes

# The order is the kernel's type number (EV_<name> in the rendered C).
EVENT_NAMES = ("TCP_SEND_RST", "TCP_RECEIVE_RST", "PACKETLOSS", "NET_SOFTIRQ_SLOW",
               "NETIF_TXLAT_SLOW", "TCP_RETRANS")
# OpenTelemetry severity numbers (logs data model): INFO = 9, WARN = 13
SEVERITY = {"TCP_SEND_RST": (9, "INFO"), "TCP_RECEIVE_RST": (9, "INFO"),
            "PACKETLOSS": (13, "WARN"), "NET_SOFTIRQ_SLOW": (13, "WARN"),
            "NETIF_TXLAT_SLOW": (13, "WARN"), "TCP_RETRANS": (9, "INFO")}
RECORD = struct.Struct("<QQQIIIIiIHHI28s28s16s")
NO_REASON = 0xFFFFFFFF
UNKNOWN_REASON = 0xFFFFFFFE
L4_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}
ETH_P = {0x0800: "ipv4", 0x86DD: "ipv6", 0x0806: "arp"}


class DecodeError(ValueError):
    """A perf sample that is not an event record (wrong size or type)."""


@dataclass(frozen=True, slots=True)
class Record:
    ts_ns: int
    location: int
    value_ns: int
    type: int
    netns: int
    reason: int
    state: int
    stack_id: int
    cpu: int
    protocol: int
    l4: int
    saddr: bytes
    daddr: bytes
    ifname: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    severity_number: int
    severity_text: str
    time_unix_nano: int
    netns: int
    pod: Attributes  # netns.inode, netns.kind, k8s.pod.uid/name, k8s.namespace.name
    source: Endpoint | None
    destination: Endpoint | None
    reason: str
    location: str
    stack: tuple[str, ...]
    attributes: Attributes  # the type's own: tcp.state, softirq.*, interface, latency, cpu

    def attribute(self, key: str) -> str | None:
        return dict(self.pod).get(key) or dict(self.attributes).get(key)


def decode_record(data: bytes) -> Record:
    if len(data) < RECORD.size:
        raise DecodeError(f"event record of {len(data)} bytes, expected {RECORD.size}")
    f = RECORD.unpack_from(data)
    if f[3] >= len(EVENT_NAMES):
        raise DecodeError(f"event record with unknown type {f[3]}")
    return Record(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10],
                  f[12], f[13], f[14].split(b"\0", 1)[0].decode(errors="replace"))


def parse_sockaddr(raw: bytes) -> Endpoint | None:
    """struct sockaddr_in / sockaddr_in6 bytes (family in host order) → address and port."""
    family = int.from_bytes(raw[0:2], "little")
    port = int.from_bytes(raw[2:4], "big")
    if family == AF_INET:
        return Endpoint(socket.inet_ntop(socket.AF_INET, raw[4:8]), port)
    if family == AF_INET6:
        return Endpoint(socket.inet_ntop(socket.AF_INET6, raw[8:24]), port)
    return None


@dataclass(frozen=True, slots=True)
class Names:
    """What to name a record's numbers with (all from the running kernel)."""

    drop_reasons: Mapping[int, str]
    reset_reasons: Mapping[int, str]
    symbol: Callable[[int], str]
    pod: Callable[[int], Attributes]


def _reason(record: Record, name: str, names: Names) -> str:
    if name == "PACKETLOSS":
        return names.drop_reasons.get(record.reason, str(record.reason))
    if name in ("TCP_SEND_RST", "TCP_RECEIVE_RST"):
        if record.reason == NO_REASON:
            return ""
        if record.reason == UNKNOWN_REASON:
            return "unknown"
        return names.reset_reasons.get(record.reason, str(record.reason))
    return ""


def _own_attributes(record: Record, name: str) -> dict[str, str]:
    out: dict[str, str] = {"cpu": str(record.cpu)}
    if name.startswith("TCP_"):
        out["tcp.state"] = tcp_state_name(record.state)
    elif name == "NET_SOFTIRQ_SLOW":
        out["softirq.vector"] = SOFTIRQ_VECTOR_NAMES.get(record.reason, str(record.reason))
        out["softirq.phase"] = "schedule" if record.state == 0 else "execute"
    elif name == "NETIF_TXLAT_SLOW":
        out["network.interface.name"] = record.ifname
    elif name == "PACKETLOSS":
        out["network.protocol"] = ETH_P.get(record.protocol, f"0x{record.protocol:04x}")
        if record.l4:
            out["network.transport"] = L4_NAMES.get(record.l4, str(record.l4))
    if record.value_ns:
        out["latency.ns"] = str(record.value_ns)
    return out


def to_event(record: Record, names: Names, clock_offset_ns: int,
             stack: tuple[str, ...] = ()) -> Event:
    """Name a record's parts; ``clock_offset_ns`` turns CLOCK_MONOTONIC into Unix time."""
    name = EVENT_NAMES[record.type]
    number, text = SEVERITY[name]
    location = names.symbol(record.location) if record.location else ""
    return Event(name, number, text, record.ts_ns + clock_offset_ns, record.netns,
                 names.pod(record.netns), parse_sockaddr(record.saddr),
                 parse_sockaddr(record.daddr), _reason(record, name, names), location, stack,
                 tuple(sorted(_own_attributes(record, name).items())))


def _endpoint(e: Endpoint | None) -> str:
    if e is None:
        return "?"
    return f"[{e.address}]:{e.port}" if ":" in e.address else f"{e.address}:{e.port}"


def summary(event: Event) -> str:
    """One line saying what happened: the log body and `watch`'s text."""
    parts = [event.name]
    if event.source or event.destination:
        parts.append(f"{_endpoint(event.source)} -> {_endpoint(event.destination)}")
    own = dict(event.attributes)
    for key in ("tcp.state", "softirq.vector", "softirq.phase", "network.interface.name",
                "network.transport"):
        if key in own:
            parts.append(f"{key.rsplit('.', 1)[-1]}={own[key]}")
    if event.reason:
        parts.append(f"reason={event.reason}")
    if event.location:
        parts.append(f"location={event.location}")
    if "latency.ns" in own:
        parts.append(f"latency={int(own['latency.ns']) / 1e6:.3f}ms")
    return " ".join(parts)
