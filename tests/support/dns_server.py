"""A DNS server for tests, run inside a test pod: UDP and TCP on IP:53 (RFC 1035, RFC 7766).

What it answers is chosen by the query name's first label, so a test says what should
happen by the name it asks for:
- ``ok``: an A record (10.1.2.3) for A, an empty NOERROR for other types;
- ``nx``: NXDOMAIN; ``fail``: SERVFAIL; ``refused``: REFUSED;
- ``tc``: over UDP an empty answer with the TC bit set, over TCP the A record;
- ``late``: the A record after LATE_DELAY seconds (after the client's timeout);
- ``drop``: nothing.
Prints "ready" once both sockets are bound; on SIGTERM prints a JSON count of queries
received per first label and transport on stderr (the server's own log, for cross-checks).
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter

LATE_DELAY = 1.5
RCODES = {"nx": 3, "fail": 2, "refused": 5}


def _question(packet: bytes) -> tuple[str, int, int]:
    """(first label, qtype, end offset of the question)."""
    labels, pos = [], 12
    while packet[pos]:
        labels.append(packet[pos + 1:pos + 1 + packet[pos]].decode())
        pos += 1 + packet[pos]
    (qtype,) = struct.unpack("!H", packet[pos + 1:pos + 3])
    return (labels[0] if labels else ""), qtype, pos + 5


def reply(packet: bytes, tcp: bool) -> bytes | None:
    """The answer to one query, or None (no answer)."""
    ident, flags = struct.unpack("!HH", packet[:4])
    label, qtype, end = _question(packet)
    if label == "drop":
        return None
    rcode, answer, tc = RCODES.get(label, 0), b"", 0
    if label == "tc" and not tcp:
        tc = 0x0200
    elif rcode == 0 and qtype == 1:  # pointer to the name, A, IN, TTL 30, 4 bytes
        answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton("10.1.2.3")
    header = struct.pack("!HHHHHH", ident, 0x8080 | tc | (flags & 0x0100) | rcode, 1,
                         1 if answer else 0, 0, 0)
    return header + packet[12:end] + answer


def serve(ip: str) -> None:
    seen: Counter[str] = Counter()

    def stop(*_: object) -> None:
        print(json.dumps(seen), file=sys.stderr, flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((ip, 53))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, 53))
    listener.listen()
    threading.Thread(target=_serve_tcp, args=(listener, seen), daemon=True).start()
    print("ready", flush=True)
    while True:
        packet, peer = udp.recvfrom(4096)
        label = _question(packet)[0]
        seen[f"{label}/udp"] += 1
        answer = reply(packet, tcp=False)
        if answer is None:
            continue
        if label == "late":
            threading.Timer(LATE_DELAY, udp.sendto, (answer, peer)).start()
        else:
            udp.sendto(answer, peer)


def _serve_tcp(listener: socket.socket, seen: Counter[str]) -> None:
    while True:
        conn, _ = listener.accept()
        with conn:
            length = struct.unpack("!H", conn.recv(2))[0]
            packet = b""
            while len(packet) < length:
                packet += conn.recv(length - len(packet))
            seen[f"{_question(packet)[0]}/tcp"] += 1
            answer = reply(packet, tcp=True)
            if answer is not None:
                conn.sendall(struct.pack("!H", len(answer)) + answer)
                time.sleep(0.05)


if __name__ == "__main__":
    serve(sys.argv[1])
