"""Parse the part of a DNS message the agent needs: header, first question, nothing else.

Why our own parser and not dnspython or dnslib: the input is the first bytes of a
packet as a BPF program copied them out of the kernel, often cut short on purpose,
and hostile by assumption (anything can be sent to port 53). We need a total
function: every input either parses to a frozen DnsMessage or raises DnsParseError
with one of a closed set of reasons, which the probe counts as "unparsed" by
reason; it never loops, never reads past the bytes it was given, and never
allocates more than the 255-byte name limit. The libraries raise a zoo of
exception types, parse all sections (the answer records we do not need), and a
name with a compression loop is their problem to detect, not a guarantee.

Limits are RFC 1035's: a label is at most 63 bytes (section 2.3.4), a name at
most 255 bytes on the wire, a compression pointer has its two top bits set
(section 4.1.4). A pointer must point strictly before the start of the labels it
ends: every jump then lowers that start, so no input can loop (a pointer merely
"backwards" can still land before itself and loop: 3www + pointer to the www).
The 255-byte budget counts every label followed, a second bound.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

HEADER = struct.Struct("!HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
MAX_NAME = 255
_OPCODES = frozenset({0, 1, 2, 4, 5, 6})  # QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO (IANA)


class Unparsed(enum.StrEnum):
    """Why a payload on a DNS port is not a DNS message we can use."""

    SHORT_HEADER = "short_header"        # fewer than 12 bytes
    NOT_DNS = "not_dns"                  # qdcount other than 1 or an unassigned opcode
    LABEL_PAST_END = "label_past_end"    # a length runs past the bytes we have
    BAD_LABEL = "bad_label"              # label type 0b01/0b10 (RFC 6891 ext. labels) or > 63
    NAME_TOO_LONG = "name_too_long"      # more than 255 bytes
    BAD_POINTER = "bad_pointer"          # a compression pointer forwards, to itself or
                                         # into the header: the only way to loop
    BAD_TCP_LENGTH = "bad_tcp_length"    # a TCP length prefix shorter than a header
    TCP_MESSAGES_PAST_LIMIT = "tcp_messages_past_limit"  # the probe parses 4 messages of a
                                         # TCP segment (counting.c TCP_MESSAGES), not more


class DnsParseError(ValueError):
    def __init__(self, reason: Unparsed, detail: str = "") -> None:
        super().__init__(f"{reason.value}{': ' + detail if detail else ''}")
        self.reason = reason


class Rcode(enum.IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


RCODE_CLASSES = ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED")  # the rest is "other"


def rcode_class(rcode: int) -> str:
    """The metric attribute value for a response code: four named, the rest "other"."""
    name = Rcode(rcode).name if rcode in Rcode._value2member_map_ else ""
    return name if name in RCODE_CLASSES else "other"


def qtype_class(qtype: int) -> str:
    """The metric attribute value for a question type: A, AAAA or other (RFC 1035, 3596)."""
    return {1: "A", 28: "AAAA"}.get(qtype, "other")


@dataclass(frozen=True, slots=True)
class DnsMessage:
    id: int
    response: bool      # QR bit
    opcode: int
    truncated: bool     # TC bit: the answer did not fit, the client should retry over TCP
    rcode: int
    qdcount: int
    ancount: int
    qname: str          # presentation form, lower-cased, "." for the root; "" if cut short
    qtype: int          # 0 when the captured bytes end inside the question
    complete: bool      # the question was read whole (False: captured bytes ended first)


def parse(payload: bytes, *, tcp: bool = False) -> DnsMessage:
    """The header and first question of ``payload`` (a UDP payload, or TCP with length prefix).

    The bytes may end early (a capture of the first N bytes): the header is then
    still returned with ``complete=False``, so a response can be matched and its
    rcode counted even when the name did not fit. Anything else malformed raises
    DnsParseError.
    """
    if tcp:
        if len(payload) < 2:
            raise DnsParseError(Unparsed.SHORT_HEADER, f"{len(payload)} bytes")
        (length,) = struct.unpack_from("!H", payload)
        if length < HEADER.size:
            raise DnsParseError(Unparsed.BAD_TCP_LENGTH, f"length prefix {length}")
        payload = payload[2:2 + length]
    if len(payload) < HEADER.size:
        raise DnsParseError(Unparsed.SHORT_HEADER, f"{len(payload)} bytes")
    ident, flags, qdcount, ancount, _ns, _ar = HEADER.unpack_from(payload)
    opcode = (flags >> 11) & 0xF
    if qdcount != 1 or opcode not in _OPCODES:
        # RFC 9619: a QUERY carries exactly one question; real resolvers send
        # nothing else, so anything else on a DNS port is counted, not guessed at
        raise DnsParseError(Unparsed.NOT_DNS, f"qdcount {qdcount}, opcode {opcode}")
    qname, end = read_name(payload, HEADER.size)
    qtype, complete = 0, False
    if end is not None and end + 4 <= len(payload):
        (qtype,) = struct.unpack_from("!H", payload, end)
        complete = True
    return DnsMessage(id=ident, response=bool(flags & 0x8000), opcode=opcode,
                      truncated=bool(flags & 0x0200), rcode=flags & 0xF, qdcount=qdcount,
                      ancount=ancount, qname=qname, qtype=qtype, complete=complete)


def read_name(data: bytes, offset: int) -> tuple[str, int | None]:
    """The name at ``offset`` and the offset just after it, or (partial name, None) if cut.

    A label running past the end of ``data`` means the capture ended, unless the
    name's own bytes say otherwise: callers that hold the whole packet treat a
    None end as LABEL_PAST_END themselves (see parse_complete).
    """
    labels: list[bytes] = []
    wire_length, end, position, run_start = 1, None, offset, offset
    while True:
        if position >= len(data):
            return _join(labels), None
        length = data[position]
        kind = length & 0xC0
        if kind == 0xC0:
            if position + 1 >= len(data):
                return _join(labels), None
            target = ((length & 0x3F) << 8) | data[position + 1]
            if target >= run_start or target < HEADER.size:
                raise DnsParseError(Unparsed.BAD_POINTER, f"pointer at {position} to {target}")
            if end is None:
                end = position + 2
            position = run_start = target
            continue
        if kind:
            raise DnsParseError(Unparsed.BAD_LABEL, f"label type {kind >> 6:#04b} at {position}")
        if length == 0:
            return _join(labels), end if end is not None else position + 1
        wire_length += length + 1
        if wire_length > MAX_NAME:
            raise DnsParseError(Unparsed.NAME_TOO_LONG, f"more than {MAX_NAME} bytes")
        label = data[position + 1:position + 1 + length]
        if len(label) < length:
            return _join([*labels, label]), None
        labels.append(label)
        position += length + 1


def parse_complete(payload: bytes, *, tcp: bool = False) -> DnsMessage:
    """As parse(), for a whole packet: a question cut short is malformed, not a short capture."""
    message = parse(payload, tcp=tcp)
    if not message.complete:
        raise DnsParseError(Unparsed.LABEL_PAST_END, "question runs past the packet")
    return message


def _join(labels: list[bytes]) -> str:
    if not labels:
        return "."
    # names are bytes on the wire: keep any byte readable and unambiguous (RFC 4343 escapes)
    return ".".join(_escape(label) for label in labels).lower()


def _escape(label: bytes) -> str:
    out = []
    for byte in label:
        char = chr(byte)
        if char in ".\\":
            out.append("\\" + char)
        elif 0x21 <= byte <= 0x7E:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)
