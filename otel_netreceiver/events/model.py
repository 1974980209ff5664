"""Event records: the kernel's fixed record (events/record.py) decoded into frozen data.

``decode_record`` turns the bytes of one perf sample into a ``Record`` (numbers
only); ``to_event`` names its parts (reason, TCP state, drop site, pod) from
lookups passed in and the event type's own naming (its probe's module), so both
are pure and tested on bytes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from otel_netreceiver.bpf.probes import EVENT_NAMES, EVENT_TYPES
from otel_netreceiver.events.record import ATTRS, POSITIONS, RECORD
from otel_netreceiver.kernel_abi import AF_INET, AF_INET6
from otel_netreceiver.model import Attributes

NO_REASON = 0xFFFFFFFF
UNKNOWN_REASON = 0xFFFFFFFE


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
    extra: bytes = b""  # what follows the fixed record (a type's variable part: DNS names)


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
    body: str = ""  # the log body when the record says it better than summary() (peer.top)

    def attribute(self, key: str) -> str | None:
        return dict(self.pod).get(key) or dict(self.attributes).get(key)


def decode_record(data: bytes) -> Record:
    if len(data) < RECORD.size:
        raise DecodeError(f"event record of {len(data)} bytes, expected {RECORD.size}")
    f = RECORD.unpack_from(data)
    values = dict(zip(ATTRS, (f[i] for i in POSITIONS), strict=True))
    if values["type"] >= len(EVENT_NAMES):
        raise DecodeError(f"event record with unknown type {values['type']}")
    values["ifname"] = values["ifname"].split(b"\0", 1)[0].decode(errors="replace")
    return Record(**values, extra=bytes(data[RECORD.size:]))


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

    # (tracepoint category, event, field) → that field's enum names (drop and reset reasons)
    enums: Mapping[tuple[str, str, str], Mapping[int, str]]
    symbol: Callable[[int], str]
    pod: Callable[[int], Attributes]
    # namespace cookie → inode, for records that carry a cookie (EventType.cookie); 0 unknown
    inode_of: Callable[[int], int] = lambda cookie: 0

    def enum(self, category: str, event: str, field: str) -> Mapping[int, str]:
        return self.enums.get((category, event, field), {})


def to_event(record: Record, names: Names, clock_offset_ns: int,
             stack: tuple[str, ...] = ()) -> Event:
    """Name a record's parts; ``clock_offset_ns`` turns CLOCK_MONOTONIC into Unix time."""
    kind = EVENT_TYPES[record.type]
    own: dict[str, str] = {"cpu": str(record.cpu), **kind.attributes(record)}
    if record.value_ns:
        own["latency.ns"] = str(record.value_ns)
    location = names.symbol(record.location) if record.location else ""
    netns = names.inode_of(kind.cookie(record)) if kind.cookie else record.netns
    return Event(kind.name, kind.severity_number, kind.severity_text,
                 record.ts_ns + clock_offset_ns, netns, names.pod(netns),
                 parse_sockaddr(record.saddr), parse_sockaddr(record.daddr),
                 kind.reason(record, names), location, stack, tuple(sorted(own.items())))


def _endpoint(e: Endpoint | None) -> str:
    if e is None:
        return "?"
    return f"[{e.address}]:{e.port}" if ":" in e.address else f"{e.address}:{e.port}"


def summary(event: Event) -> str:
    """One line saying what happened: the log body and `watch`'s text."""
    if event.body:
        return event.body
    parts = [event.name]
    if event.source or event.destination:
        parts.append(f"{_endpoint(event.source)} -> {_endpoint(event.destination)}")
    own = dict(event.attributes)
    for key in ("tcp.state", "softirq.vector", "softirq.phase", "network.interface.name",
                "network.transport", "dns.question.name", "dns.question.type",
                "dns.response.code"):
        if key in own:
            parts.append(f"{key.rsplit('.', 1)[-1]}={own[key]}")
    if event.reason:
        parts.append(f"reason={event.reason}")
    if event.location:
        parts.append(f"location={event.location}")
    if "latency.ns" in own:
        parts.append(f"latency={int(own['latency.ns']) / 1e6:.3f}ms")
    return " ".join(parts)
