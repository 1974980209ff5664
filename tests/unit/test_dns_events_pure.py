"""The dns probe's event records, ndots and fallback rows, and resolv.conf re-reads, without
a kernel: name decoding on hostile bytes, a record through decode → event → OTLP attributes,
the counter rows, the timeout re-read when the file changes (real files under a temporary
proc root)."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from otel_netreceiver.bpf.probes import EVENT_NAMES
from otel_netreceiver.bpf.probes.dns.events import (
    MALFORMED,
    NO_RCODE,
    TAIL,
    decode_name,
    timeout_record,
)
from otel_netreceiver.bpf.probes.dns.reader import NDOTS, TCP_FALLBACK, dns_points
from otel_netreceiver.bpf.probes.dns.timeouts import TimeoutWriter
from otel_netreceiver.catalogue import metric
from otel_netreceiver.events.model import Names, decode_record, summary, to_event
from otel_netreceiver.events.otlp_logs import event_attributes
from otel_netreceiver.events.record import RECORD
from otel_netreceiver.model import attrs


def wire(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def test_names_decode_as_on_the_wire_with_escapes() -> None:
    assert decode_name(wire("Api.Example.com")) == "Api.Example.com"  # no case folding
    assert decode_name(b"\0") == "."
    assert decode_name(b"\x03a.b\x02\x01\xff\0") == "a\\.b.\\001\\255"


def test_malformed_names_are_a_placeholder() -> None:
    for raw in (b"", b"\x03ab", b"\x03abc", b"\xc0\x0c", b"\x03www\xc0\x0c", b"\x41" + b"a" * 70,
                b"\x01a" * 200 + b"\0"):
        assert decode_name(raw) == MALFORMED, raw


@given(st.binary(max_size=300))
def test_any_bytes_decode_without_an_exception(raw: bytes) -> None:
    name = decode_name(raw)
    assert name == MALFORMED or len(name) <= 4 * len(raw)


def _leaf(name: str) -> SimpleNamespace:
    raw = wire(name)
    return SimpleNamespace(family=socket.AF_INET, client_port=40000, server_port=53,
                           client=socket.inet_aton("10.251.65.2") + bytes(12),
                           server=socket.inet_aton("10.251.66.2") + bytes(12),
                           sent=1_000_000_000, timeout=2_000_000_000, qtype=28, transport=0,
                           name_len=len(raw), name=raw + bytes(256 - len(raw)))


def _names() -> Names:
    return Names({}, lambda a: "", lambda inode: attrs({"netns.inode": str(inode)}),
                 lambda cookie: {77: 4026532000}.get(cookie, 0))


def test_a_swept_timeout_becomes_a_named_event_of_the_pod() -> None:
    data = timeout_record(EVENT_NAMES.index("DNS_TIMEOUT"), SimpleNamespace(netns=77),
                          _leaf("svc.ns.svc.cluster.local"), 3_500_000_000)
    # fixed record, tail, and the name's bytes only (the kernel rounds up to 8 bytes)
    assert len(data) == RECORD.size + TAIL.size + len(wire("svc.ns.svc.cluster.local"))
    event = to_event(decode_record(data), _names(), 0)
    assert event.name == "DNS_TIMEOUT" and event.netns == 4026532000
    assert dict(event.pod) == {"netns.inode": "4026532000"}
    assert (event.source.address, event.source.port) == ("10.251.65.2", 40000)  # type: ignore
    assert (event.destination.address, event.destination.port) == ("10.251.66.2", 53)  # type: ignore
    a = dict(event_attributes(event))
    assert a["dns.question.name"] == "svc.ns.svc.cluster.local"
    assert a["dns.question.type"] == "AAAA" and a["reason"] == "timeout"
    assert a["latency.ns"] == "2500000000" and a["dns.timeout.ns"] == "2000000000"
    offset = time.time_ns() - time.monotonic_ns()
    assert abs(int(a["dns.query.time_unix_nano"]) - (1_000_000_000 + offset)) < 10**8
    assert "dns.response.code" not in a and "dns.answer.time_unix_nano" not in a
    assert "name=svc.ns.svc.cluster.local type=AAAA reason=timeout" in summary(event)


def test_a_late_answer_says_how_late() -> None:
    late = EVENT_NAMES.index("DNS_LATE_ANSWER")
    head = RECORD.pack(9, 0, 2_600_000_000, late, 0, 0, 0, -1, 1, 0x0800, 17, 0,
                       bytes(28), bytes(28), b"")
    raw = wire("late.test")
    data = head + TAIL.pack(77, 1_000, 2_600_001_000, 2_000_000_000, 0, 1, 0, len(raw), 0) + raw
    event = to_event(decode_record(data), _names(), 0)
    a = dict(event.attributes)
    assert event.reason == "after_timeout" and a["dns.late.ns"] == "600000000"
    assert a["dns.response.code"] == "NOERROR" and a["dns.answer.latency_ns"] == "2600000000"
    assert int(a["dns.answer.time_unix_nano"]) - int(a["dns.query.time_unix_nano"]) == 2_600_000_000


def test_a_record_cut_before_its_tail_still_decodes() -> None:
    head = RECORD.pack(9, 0, 0, EVENT_NAMES.index("DNS_SERVFAIL"), 0, 2, 0, -1, 1, 0x0800, 17,
                       0, bytes(28), bytes(28), b"")
    event = to_event(decode_record(head + b"\x01\x02"), _names(), 0)
    assert dict(event.attributes)["dns.question.name"] == MALFORMED
    assert event.reason == "SERVFAIL" and event.netns == 0
    assert TAIL.unpack(TAIL.pack(1, 2, 3, 4, 5, 6, NO_RCODE, 8, 1))[6] == NO_RCODE


def test_ndots_and_fallback_rows_and_the_swept_failures() -> None:
    counts = [(7, NDOTS, 0, 1, 0, 0, 3), (7, TCP_FALLBACK, 0, 1, 0, 1, 2),
              (7, TCP_FALLBACK, 0, 1, 1, 1, 1)]
    points = dns_points(counts, [], {}, lambda n: attrs({"netns.inode": str(n)}),
                        {(7, 1): 4})
    by = {(p.metric.name, tuple(sorted(p.attributes))): p.value for p in points}
    cls = ("dns.resolver.class", "cluster_dns")
    inode = ("netns.inode", "7")
    assert by[("netreceiver.pod.dns.ndots_expansions", (cls, inode))] == 3
    assert by[("netreceiver.pod.dns.tcp_fallbacks",
               (("dns.fallback.result", "ok"), cls, inode))] == 2
    assert by[("netreceiver.pod.dns.tcp_fallbacks",
               (("dns.fallback.result", "failed"), cls, inode))] == 5
    for point in points:
        assert {k for k, _ in point.attributes} - {"netns.inode"} <= set(
            metric(point.metric.name).attributes)


def test_the_timeout_is_read_again_when_resolv_conf_changes(tmp_path: Path) -> None:
    conf = tmp_path / "42" / "root" / "etc" / "resolv.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("nameserver 10.0.0.10\noptions timeout:2\n")
    writer = TimeoutWriter(str(tmp_path), resolver=None)  # type: ignore[arg-type]
    assert writer.timeout_of(1, 42) == 2_000_000_000
    assert writer.timeout_of(1, 42) == 2_000_000_000 and writer.reads == 1  # unchanged
    conf.write_text("nameserver 10.0.0.10\noptions timeout:7 ndots:5\n")  # size changed
    assert writer.timeout_of(1, 42) == 7_000_000_000 and writer.reads == 2
    conf.unlink()
    assert writer.timeout_of(1, 42) == 5_000_000_000  # gone: the resolver's default
    assert struct.calcsize("<QQQQIHBBB7x") == TAIL.size == 48


def test_the_node_api_adapter_reads_the_query_time_of_a_late_record() -> None:
    from otel_netreceiver.events.recent import from_event

    late = EVENT_NAMES.index("DNS_LATE_ANSWER")
    head = RECORD.pack(9, 0, 2_600_000_000, late, 0, 0, 0, -1, 1, 0x0800, 17, 0,
                       bytes(28), bytes(28), b"")
    raw = wire("late.test")
    data = head + TAIL.pack(77, 1_000, 2_600_001_000, 2_000_000_000, 0, 1, 0, len(raw), 0) + raw
    names = Names({}, lambda a: "", lambda inode: attrs({"k8s.pod.uid": "u1"}),
                  lambda cookie: 5)
    event = to_event(decode_record(data), names, 0)
    found = from_event(event)
    assert found is not None and found.query_name == "late.test"
    assert found.sent_unix_nano == int(dict(event.attributes)["dns.query.time_unix_nano"])
    assert found.timeout_ns == 2_000_000_000 and found.late_reason == "after_timeout"
