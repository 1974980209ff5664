"""Fuzzing dns/message.py with the malformed shapes the issue lists, built on purpose rather
than hoped for in random bytes: truncated headers, compression pointer chains and loops,
lengths past the packet, oversized names, non-DNS payloads and IP fragments of real
messages. The parser must be total (a DnsMessage or DnsParseError, nothing else) and do
bounded work: it reads the input through a counting wrapper, so a loop fails the test
instead of hanging it.
"""

from __future__ import annotations

import struct

import dns.message
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_netreceiver.dns.message import (
    HEADER,
    MAX_NAME,
    DnsMessage,
    DnsParseError,
    Unparsed,
    parse,
    parse_complete,
    read_name,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Counted(bytes):
    """bytes that count how often they are indexed: the parser's work, without a clock; past
    the budget a read raises, so a parser that loops fails here instead of hanging."""

    reads = 0
    budget = 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]
        Counted.reads += 1
        if Counted.reads > Counted.budget:
            raise AssertionError(f"more than {Counted.budget} reads of {len(self)} bytes")
        return super().__getitem__(index)


def _start(payload: bytes) -> Counted:
    # each step of the name walk reads at most 2 bytes; steps are bounded by the labels
    # (<= 128 within 255 bytes) plus the pointers (each lands strictly lower)
    Counted.reads, Counted.budget = 0, 4 * (len(payload) + MAX_NAME)
    return Counted(payload)


def run(payload: bytes, *, complete: bool = False) -> DnsMessage | Unparsed:
    """The parser's verdict on ``payload``; fails on any other exception or unbounded work."""
    try:
        return (parse_complete if complete else parse)(_start(payload))
    except DnsParseError as err:
        assert isinstance(err.reason, Unparsed)
        return err.reason


def header(qdcount: int = 1, flags: int = 0x0100, ident: int = 0x1234) -> bytes:
    return HEADER.pack(ident, flags, qdcount, 0, 0, 0)


# pieces of a name on the wire: a label, a compression pointer anywhere, a bad length byte
LABELS = st.binary(min_size=0, max_size=70).map(lambda b: bytes([len(b)]) + b)
POINTERS = st.integers(0, 0x3FFF).map(lambda t: struct.pack("!H", 0xC000 | t))
BAD_LENGTHS = st.integers(0x40, 0xBF).map(lambda b: bytes([b]))
PIECES = st.lists(st.one_of(LABELS, LABELS, POINTERS, BAD_LENGTHS), max_size=12)
REAL = st.sampled_from([
    dns.message.make_query(name, qtype, id=7).to_wire()
    for name in ("ok.test.", "a.very.long.name.in.a.cluster.svc.cluster.local.")
    for qtype in ("A", "AAAA", "TXT")])


@FUZZ
@given(PIECES, st.booleans(), st.integers(0, 300))
def test_names_built_of_labels_pointers_and_bad_lengths(pieces, terminate, cut):
    body = b"".join(pieces) + (b"\x00\x00\x01\x00\x01" if terminate else b"")
    payload = header() + body
    run(payload[:len(payload) - cut])
    run(payload, complete=True)


@FUZZ
@given(st.lists(st.binary(min_size=1, max_size=63).map(lambda b: bytes([len(b)]) + b),
                max_size=4), st.integers(0, 64))
def test_every_pointer_that_could_loop_is_refused(labels, back):
    """A name ending in a pointer to its own start, or anywhere after it, or into the
    header: the shapes of every compression loop (message.py's docstring)."""
    name = b"".join(labels)
    start = HEADER.size
    for target in (start, start + len(name), start + min(back, len(name)), back % start):
        payload = header() + name + struct.pack("!H", 0xC000 | target) + b"\x00\x01\x00\x01"
        assert run(payload) is Unparsed.BAD_POINTER


@FUZZ
@given(st.integers(2, 200), st.integers(1, 63))
def test_a_chain_of_pointers_each_one_back_terminates(hops, width):
    """Names (after the question: the first name can hold no valid pointer) each pointing to
    the one before, ``hops`` deep: followed down to the first, or refused as too long."""
    data = bytearray(header()) + bytes([width]) + b"x" * width + b"\x00"
    start = HEADER.size
    for _ in range(hops - 1):
        here = len(data)
        data += b"\x01y" + struct.pack("!H", 0xC000 | start)
        start = here
    try:
        name, end = read_name(_start(bytes(data)), start)
    except DnsParseError as err:
        assert err.reason is Unparsed.NAME_TOO_LONG and 2 * (hops - 1) + width + 2 > MAX_NAME
    else:
        assert name == "y." * (hops - 1) + "x" * width and end == len(data)


@FUZZ
@given(REAL, st.integers(1, 200))
def test_lengths_past_the_packet(wire, extra):
    """A label length running past the end: a capture cut short for parse(), malformed for
    parse_complete()."""
    data = bytearray(wire)
    data[HEADER.size] = min(63, data[HEADER.size] + extra)  # the first label, longer
    shortened = bytes(data[:HEADER.size + 1 + data[HEADER.size] - 1])
    verdict = run(shortened)
    assert isinstance(verdict, DnsMessage) and not verdict.complete
    assert run(shortened, complete=True) is Unparsed.LABEL_PAST_END


@FUZZ
@given(st.lists(st.integers(1, 63), min_size=4, max_size=12))
def test_oversized_names(lengths):
    name = b"".join(bytes([n]) + b"a" * n for n in lengths)
    verdict = run(header() + name + b"\x00\x00\x01\x00\x01")
    wire = len(name) + 1
    assert (verdict is Unparsed.NAME_TOO_LONG) == (wire > MAX_NAME)


@FUZZ
@given(st.binary(max_size=11), st.booleans())
def test_truncated_headers(payload, tcp):
    try:
        parse(payload, tcp=tcp)
    except DnsParseError as err:
        assert err.reason in (Unparsed.SHORT_HEADER, Unparsed.BAD_TCP_LENGTH)
    else:
        pytest.fail("a header shorter than 12 bytes parsed")


NOT_DNS = [b"GET / HTTP/1.1\r\nHost: kube-dns\r\n\r\n",
           b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + b"\x00" * 40,  # TLS ClientHello
           b"SSH-2.0-OpenSSH_9.2p1\r\n", b"\x00" * 64, b"\xff" * 64,
           b"\x17\x00\x03\x2a" + b"\x00" * 44]  # NTP


@pytest.mark.parametrize("payload", NOT_DNS)
def test_well_known_non_dns_payloads_on_port_53(payload):
    verdict = run(payload)
    assert verdict in (Unparsed.NOT_DNS, Unparsed.SHORT_HEADER), verdict


@FUZZ
@given(st.text(max_size=200), st.booleans())
def test_any_text_payload(text, tcp):
    if tcp:
        with _any():
            parse(text.encode(), tcp=True)
    else:
        run(text.encode())


class _any:  # a context manager that lets a DnsParseError through as a verdict
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, tb) -> bool:  # type: ignore[no-untyped-def]
        return kind is None or issubclass(kind, DnsParseError)


@FUZZ
@given(REAL, st.data())
def test_ip_fragments_of_real_messages(wire, data):
    """The bytes of one IP fragment: the first (a prefix: header kept or cut), a later one
    (a piece from the middle), each parsed as if it were the whole datagram."""
    padded = wire + b"\x00" * data.draw(st.integers(0, 1500))
    at = data.draw(st.integers(0, len(padded)))
    head = run(padded[:at])
    if at >= HEADER.size:
        assert isinstance(head, DnsMessage) and head.id == 7
    else:
        assert head is Unparsed.SHORT_HEADER
    run(padded[at:])
    run(padded[at:], complete=True)


@FUZZ
@given(st.integers(0, 0xFFFF), st.binary(max_size=80))
def test_tcp_length_prefixes_that_lie(length, rest):
    with _any():
        parse(struct.pack("!H", length) + rest, tcp=True)
