"""The DNS parser: agreement with dnspython on real messages, and a total function on junk."""

from __future__ import annotations

import contextlib
import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_netreceiver.dns.message import (
    DnsParseError,
    Unparsed,
    parse,
    parse_complete,
    qtype_class,
    rcode_class,
    read_name,
)

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
NAMES = st.lists(LABEL, min_size=1, max_size=6).map(lambda labels: ".".join(labels) + ".")
QTYPES = st.sampled_from(["A", "AAAA", "MX", "TXT", "SRV", "PTR", "HTTPS"])
RCODES = st.sampled_from([0, 1, 2, 3, 4, 5, 9])


def _header(ident: int = 1, flags: int = 0, qd: int = 1) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, qd, 0, 0, 0)


@settings(max_examples=200, deadline=None)
@given(NAMES, QTYPES, RCODES, st.booleans(), st.integers(0, 0xFFFF))
def test_agrees_with_dnspython_on_queries_and_responses(name, qtype, rcode, tc, ident):
    query = dns.message.make_query(name, qtype, id=ident)
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if tc:
        response.flags |= dns.flags.TC
    for message, is_response in ((query, False), (response, True)):
        wire = message.to_wire()
        parsed = parse_complete(wire)
        assert parsed.id == ident
        assert parsed.response is is_response
        assert parsed.qname == name.rstrip(".").lower()
        assert parsed.qtype == dns.rdatatype.from_text(qtype)
        if is_response:
            assert parsed.rcode == rcode & 0xF
            assert parsed.truncated is tc
        # the same message over TCP, with its two-byte length prefix
        assert parse_complete(struct.pack("!H", len(wire)) + wire, tcp=True) == parsed


def test_a_capture_cut_inside_the_question_still_gives_the_header():
    wire = dns.message.make_response(dns.message.make_query("a.very.long.name.example.", "A",
                                                            id=7)).to_wire()
    parsed = parse(wire[:20])
    assert (parsed.id, parsed.response, parsed.complete, parsed.qtype) == (7, True, False, 0)
    assert parsed.qname.startswith("a.very")
    with pytest.raises(DnsParseError) as caught:
        parse_complete(wire[:20])
    assert caught.value.reason is Unparsed.LABEL_PAST_END


def test_compression_pointers_are_followed_backwards_and_loops_refused():
    # a pointer may only land before the labels it ends: "www" then a pointer to an
    # earlier "example" (as in a message whose question follows another name)
    earlier = b"\x07example\x00"
    data = _header() + earlier + b"\x03www\xc0\x0c\x00\x01\x00\x01"
    name, end = read_name(data, 12 + len(earlier))
    assert (name, end) == ("www.example", len(data) - 4)
    # "www" + a pointer back to that same "www": backwards, yet a loop
    with pytest.raises(DnsParseError) as caught:
        parse_complete(_header() + b"\x03www\xc0\x0c\x00\x01\x00\x01")
    assert caught.value.reason is Unparsed.BAD_POINTER


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\x00" * 11, Unparsed.SHORT_HEADER),
    (_header(qd=0), Unparsed.NOT_DNS),
    (_header(qd=3) + b"\x00\x00\x01\x00\x01", Unparsed.NOT_DNS),
    (_header(flags=3 << 11) + b"\x00\x00\x01\x00\x01", Unparsed.NOT_DNS),   # opcode 3
    (_header() + b"\xc0\x0c\x00\x01\x00\x01", Unparsed.BAD_POINTER),         # points at itself
    (_header() + b"\xc0\x20\x00\x01\x00\x01", Unparsed.BAD_POINTER),         # forwards
    (_header() + b"\xc0\x02\x00\x01\x00\x01", Unparsed.BAD_POINTER),         # into the header
    (_header() + b"\x41abc\x00\x00\x01\x00\x01", Unparsed.BAD_LABEL),        # type 0b01
    (_header() + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", Unparsed.NAME_TOO_LONG),
    (_header() + b"\x05ab", Unparsed.LABEL_PAST_END),
])
def test_malformed_messages_name_their_problem(payload, reason):
    with pytest.raises(DnsParseError) as caught:
        parse_complete(payload)
    assert caught.value.reason is reason


def test_tcp_length_prefix_shorter_than_a_header_is_refused():
    with pytest.raises(DnsParseError) as caught:
        parse(b"\x00\x05" + _header(), tcp=True)
    assert caught.value.reason is Unparsed.BAD_TCP_LENGTH


def test_a_name_of_exactly_255_bytes_is_accepted_and_one_more_is_not():
    labels = [b"a" * 63] * 3 + [b"b" * 61]        # 3*64 + 62 + root = 255
    name = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    assert len(name) == 255
    assert parse_complete(_header() + name + b"\x00\x01\x00\x01").complete
    longer = b"".join(bytes([len(x)]) + x for x in [*labels[:3], b"b" * 62]) + b"\x00"
    with pytest.raises(DnsParseError):
        parse_complete(_header() + longer + b"\x00\x01\x00\x01")


def test_names_keep_odd_bytes_readable():
    parsed = parse_complete(_header() + b"\x03a.b\x02\x00\xff\x00\x00\x01\x00\x01")
    assert parsed.qname == "a\\.b.\\000\\255"


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_either_parse_or_raise_the_one_error_type(payload, tcp):
    try:
        message = parse(payload, tcp=tcp)
    except DnsParseError as err:
        assert isinstance(err.reason, Unparsed)
    else:
        assert len(message.qname) <= 4 * 255  # escaped form of at most 255 wire bytes


@settings(max_examples=500, deadline=None)
@given(NAMES, QTYPES, st.integers(0, 40), st.data())
def test_mutated_real_messages_never_escape(name, qtype, cut, data):
    wire = bytearray(dns.message.make_query(name, qtype).to_wire())
    for _ in range(data.draw(st.integers(0, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DnsParseError):
        parse(bytes(wire[:len(wire) - cut]))


def test_attribute_classes_are_closed_sets():
    assert [rcode_class(code) for code in (0, 2, 3, 5, 1, 4, 9, 15)] == [
        "NOERROR", "SERVFAIL", "NXDOMAIN", "REFUSED", "other", "other", "other", "other"]
    assert [qtype_class(t) for t in (1, 28, 15, 65)] == ["A", "AAAA", "other", "other"]
    assert dns.rcode.NXDOMAIN == 3
