"""A DNS client for tests with its own resolver (not glibc): one query per line of argv.

``dns_client.py SERVER name/qtype/transport/wait ...``: each query goes out on a fresh
socket (UDP connected to SERVER:53, or TCP with the length prefix), waits up to ``wait``
seconds for the answer, then closes the socket, so a late answer finds the socket gone
(the kernel drops it with NO_SOCKET) unless ``wait`` outlasts it. Prints one JSON line:
the rcode (or null) per query, in order.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import sys

QTYPES = {"A": 1, "AAAA": 28, "TXT": 16}


def query(name: str, qtype: str) -> bytes:
    header = struct.pack("!HHHHHH", random.randrange(1, 65536), 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return header + labels + b"\0" + struct.pack("!HH", QTYPES[qtype], 1)


def ask(server: str, name: str, qtype: str, transport: str, wait: float) -> int | None:
    packet = query(name, qtype)
    if transport == "tcp":
        with socket.create_connection((server, 53), timeout=wait) as conn:
            conn.sendall(struct.pack("!H", len(packet)) + packet)
            data = conn.recv(4096)
            return data[5] & 0xF if len(data) > 5 else None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((server, 53))
        sock.settimeout(wait)
        sock.send(packet)
        try:
            return sock.recv(4096)[3] & 0xF
        except TimeoutError:
            return None


if __name__ == "__main__":
    results = []
    for spec in sys.argv[2:]:
        name, qtype, transport, wait = spec.split("/")
        results.append(ask(sys.argv[1], name, qtype, transport, float(wait)))
    print(json.dumps(results), flush=True)
