"""The dns probe's event records: DNS_TIMEOUT, DNS_LATE_ANSWER, DNS_SERVFAIL and
DNS_NXDOMAIN_BURST, with the query name (events.c).

Each record is the common struct nr_event followed by a tail (``TAIL``): the namespace
cookie (the record's netns field is 0: cgroup_skb programs know the cookie, not the inode),
the query and answer times, the resolver timeout applied, the NXDOMAIN count, the query
type, rcode, transport, and the raw question name as wire labels. The name is decoded here,
bounded and total: any byte string gives a name or a placeholder, never an exception
(``decode_name``), because the kernel copied it from a packet anyone could have sent.

Timeouts nobody answered are found by ``EventSweep``, which the event source calls about
once a second: it writes each namespace's resolver timeout into the kernel, takes expired
queries out of ``ev_pending`` atomically (so the kernel, seeing the same query re-sent or
answered late, cannot report it a second time), makes their DNS_TIMEOUT records and puts
them back marked expired for a late answer: the counting program's sweep on a table of the
same shape (bpf/probes/dns/sweep.py), so records and counts agree.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.probes.dns.sweep import sweep
from otel_netreceiver.bpf.probes.dns.timeouts import TimeoutWriter
from otel_netreceiver.dns.message import Rcode, _escape, qtype_class
from otel_netreceiver.dns.pending import Attempt
from otel_netreceiver.events.record import RECORD
from otel_netreceiver.kernel_abi import AF_INET

if TYPE_CHECKING:
    from otel_netreceiver.events.model import Names, Record
    from otel_netreceiver.netns.resolver import NetnsResolver

# struct dnsev_tail up to its name (events.c): cookie, sent, answered, timeout, count,
# qtype, rcode, name_len, transport, pad
TAIL = struct.Struct("<QQQQIHBBB7x")
NO_RCODE = 0xFF
LATE_REASONS = ("after_timeout", "no_socket")
NX_BURST = 20  # NXDOMAIN answers to one pod ...
NX_WINDOW_NS = 10**9  # ... within this window make one DNS_NXDOMAIN_BURST record
# outstanding queries the event program keeps names of (node-wide; its table has twice as
# many entries: the expired ones, waiting for a late answer, share it)
EV_PENDING = 4096
MALFORMED = "<malformed>"
SWEEP_EVERY_NS = 10**9


def decode_name(raw: bytes) -> str:
    """Wire labels → presentation form as on the wire (no case folding: OpenTelemetry's
    dns.question.name is "as it appears in the query"), non-printable bytes as \\DDD.
    ``MALFORMED`` for anything that is not a plain uncompressed name within ``raw``."""
    labels, pos = [], 0
    for _ in range(128):
        if pos >= len(raw):
            return MALFORMED
        length = raw[pos]
        if length == 0:
            return ".".join(_escape(label) for label in labels) if labels else "."
        if length & 0xC0 or pos + 1 + length > len(raw):
            return MALFORMED  # a pointer (the kernel never copies one), or past the end
        labels.append(raw[pos + 1:pos + 1 + length])
        pos += 1 + length
    return MALFORMED


def tail(record: Record) -> tuple[tuple[int, ...], bytes] | None:
    """The tail's numbers and the raw name, or None when the record has no (whole) tail."""
    if len(record.extra) < TAIL.size:
        return None
    fields = TAIL.unpack_from(record.extra)
    name_len = fields[7]
    return fields, record.extra[TAIL.size:TAIL.size + name_len]


def cookie_of(record: Record) -> int:
    found = tail(record)
    return found[0][0] if found else 0


def event_reason(record: Record, names: Names) -> str:
    """SERVFAIL/REFUSED/NXDOMAIN: the rcode's name; late answers: after_timeout/no_socket."""
    from otel_netreceiver.bpf.probes import EVENT_NAMES

    if EVENT_NAMES[record.type] == "DNS_LATE_ANSWER":
        reason = record.reason
        return LATE_REASONS[reason] if reason < len(LATE_REASONS) else str(reason)
    if EVENT_NAMES[record.type] == "DNS_TIMEOUT":
        return "timeout"
    rcode = record.reason
    return Rcode(rcode).name if rcode in Rcode._value2member_map_ else str(rcode)


def event_attributes(record: Record) -> Mapping[str, str]:
    found = tail(record)
    if found is None:
        return {"dns.question.name": MALFORMED}
    (_cookie, sent, answered, timeout, count, qtype, rcode, _len, transport), raw = found
    out = {"dns.question.name": decode_name(raw), "dns.question.type": qtype_class(qtype),
           "dns.question.type.code": str(qtype),
           "network.transport": "tcp" if transport else "udp",
           "dns.timeout.ns": str(timeout)}
    if rcode != NO_RCODE:
        out["dns.response.code"] = (Rcode(rcode).name if rcode in Rcode._value2member_map_
                                    else str(rcode))
    # the kernel's CLOCK_MONOTONIC as Unix time, as the event source converts the record's
    offset = time.time_ns() - time.monotonic_ns()
    if sent:
        out["dns.query.time_unix_nano"] = str(sent + offset)
    if answered and sent:
        out["dns.answer.time_unix_nano"] = str(answered + offset)
        out["dns.answer.latency_ns"] = str(answered - sent)
        if answered - sent >= timeout:
            out["dns.late.ns"] = str(answered - sent - timeout)
    if count:
        out["dns.nxdomain.count"] = str(count)
    return out


def timeout_record(type_index: int, key: Any, leaf: Any, now_ns: int) -> bytes:
    """A DNS_TIMEOUT record as the kernel would write it, for a query user space expired."""
    family = int(leaf.family)
    sa, da = bytearray(28), bytearray(28)
    for out, port, address in ((sa, leaf.client_port, leaf.client),
                               (da, leaf.server_port, leaf.server)):
        struct.pack_into("<H", out, 0, family)
        struct.pack_into("!H", out, 2, int(port))
        raw = bytes(address)
        if family == AF_INET:
            out[4:8] = raw[:4]
        else:
            out[8:24] = raw[:16]
    sent = int(leaf.sent)
    head = RECORD.pack(now_ns, 0, now_ns - sent, type_index, 0, 0, 0, -1, 0,
                       0x0800 if family == AF_INET else 0x86DD, 6 if leaf.transport else 17,
                       0, bytes(sa), bytes(da), b"")
    name_len = int(leaf.name_len)
    return (head + TAIL.pack(int(key.netns), sent, 0, int(leaf.timeout), 0, int(leaf.qtype),
                             NO_RCODE, name_len, int(leaf.transport))
            + bytes(leaf.name)[:name_len])


class EventSweep:
    """Probe.event_sweep for dns: timeouts into the kernel, expired queries into records."""

    def __init__(self, proc_root: str, resolver: NetnsResolver) -> None:
        self.timeouts = TimeoutWriter(proc_root, resolver)
        self._last = 0

    def __call__(self, bpf: Any, now_ns: int | None = None) -> list[bytes]:
        from otel_netreceiver.bpf.probes import EVENT_NAMES

        now = time.monotonic_ns() if now_ns is None else now_ns
        if now - self._last < SWEEP_EVERY_NS:
            return []
        self._last = now
        self.timeouts.write(bpf[b"ev_timeouts"])
        return self._sweep(bpf[b"ev_pending"], now, EVENT_NAMES.index("DNS_TIMEOUT"))

    @staticmethod
    def _sweep(pending: Any, now: int, type_index: int) -> list[bytes]:
        out: list[bytes] = []

        def record(key: Any, leaf: Any) -> None:
            out.append(timeout_record(type_index, key, leaf, now))
        sweep(pending, list(pending.items()), now, _attempt, record)
        return out


def _attempt(key: Any, value: Any) -> Attempt:
    return Attempt(int(key.netns), 0, int(value.sent), int(value.timeout))
