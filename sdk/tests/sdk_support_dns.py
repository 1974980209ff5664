"""A tiny real DNS server over UDP (RFC 1035), standard library only.

Modes: `answer` (A 10.1.2.3 for every name, an empty NOERROR for other types), `nxdomain`,
`servfail`, `silent` (reads queries, never answers). Run as a script inside a network
namespace: `python sdk_support_dns.py MODE [PORT]`; it prints "ready" once bound, and
counts queries on stderr when it stops.
"""

from __future__ import annotations

import socket
import struct
import sys

A, IN = 1, 1
ANSWER_IP = "10.1.2.3"


def parse_question(packet: bytes) -> tuple[int, int, bytes, int]:
    """(id, flags, question section bytes, qtype) of a query."""
    ident, flags = struct.unpack("!HH", packet[:4])
    pos = 12
    while packet[pos]:
        pos += 1 + packet[pos]
    end = pos + 1 + 4
    qtype = struct.unpack("!H", packet[pos + 1:pos + 3])[0]
    return ident, flags, packet[12:end], qtype


def reply(packet: bytes, mode: str) -> bytes | None:
    """The response to one query in this mode, or None to stay silent."""
    if mode == "silent":
        return None
    ident, flags, question, qtype = parse_question(packet)
    rcode = {"nxdomain": 3, "servfail": 2}.get(mode, 0)
    answers = b""
    if rcode == 0 and qtype == A:
        # name: pointer to the question's name at offset 12; TTL 30; RDATA: 4 bytes
        answers = struct.pack("!HHHIH", 0xC00C, A, IN, 30, 4) + socket.inet_aton(ANSWER_IP)
    out_flags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode  # QR, RD copied, RA, RCODE
    header = struct.pack("!HHHHHH", ident, out_flags, 1, 1 if answers else 0, 0, 0)
    return header + question + answers


def serve(mode: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print("ready", flush=True)
    queries = 0
    try:
        while True:
            packet, peer = sock.recvfrom(4096)
            queries += 1
            response = reply(packet, mode)
            if response is not None:
                sock.sendto(response, peer)
    except KeyboardInterrupt:
        pass
    finally:
        print(f"queries {queries}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 53)
