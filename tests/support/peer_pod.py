"""The other pod's side of the SDK scenarios, run as a script inside a test pod.

- `dns IP [ANSWER]`: a UDP DNS server (RFC 1035, standard library) on IP:53 answering
  every A query with ANSWER (default 10.1.2.3), as CoreDNS would; SIGUSR1 makes it stop
  answering (it still reads the queries), as when a throttled ENI drops the answers.
- `flood IP PORT COUNT`: send COUNT 512-byte datagrams to IP:PORT as fast as possible.
- `reset IP PORT`: a TCP server that reads one request and closes with SO_LINGER {1, 0},
  so the kernel sends a RST instead of a FIN (net/ipv4/tcp.c, __tcp_close: zero linger
  calls tcp_disconnect, which resets a connection in a synchronised state).

Each prints "ready" once bound; `dns` prints `{"answered": N, "ignored": M}` on stderr
when it gets SIGTERM.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys

A_RECORD = "10.1.2.3"


def dns_reply(packet: bytes, address: str = A_RECORD) -> bytes:
    """An answer to one query: A for A questions, an empty NOERROR for other types."""
    ident, flags = struct.unpack("!HH", packet[:4])
    end = 12
    while packet[end]:
        end += 1 + packet[end]
    qtype = struct.unpack("!H", packet[end + 1:end + 3])[0]
    question = packet[12:end + 5]
    answer = b""
    if qtype == 1:  # name = pointer to offset 12, type A, class IN, TTL 30, 4 bytes
        answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton(address)
    header = struct.pack("!HHHHHH", ident, 0x8080 | (flags & 0x0100), 1, 1 if answer else 0,
                         0, 0)
    return header + question + answer


def serve_dns(ip: str, address: str = A_RECORD) -> None:
    counts = {"answered": 0, "ignored": 0}
    silent = [False]

    def stop(*_: object) -> None:
        print(json.dumps(counts), file=sys.stderr, flush=True)
        sys.exit(0)

    signal.signal(signal.SIGUSR1, lambda *_: silent.__setitem__(0, True))
    signal.signal(signal.SIGTERM, stop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 53))
    print("ready", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        if silent[0]:
            counts["ignored"] += 1
            continue
        sock.sendto(dns_reply(packet, address), peer)
        counts["answered"] += 1


def flood(ip: str, port: int, count: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    print("ready", flush=True)
    payload = b"x" * 512
    for _ in range(count):
        sock.sendto(payload, (ip, port))


def serve_reset(ip: str, port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, port))
    listener.listen()
    print("ready", flush=True)
    conn, _ = listener.accept()
    conn.recv(4096)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "dns":
        serve_dns(*args[:2])
    elif mode == "flood":
        flood(args[0], int(args[1]), int(args[2]))
    elif mode == "reset":
        serve_reset(args[0], int(args[1]))
    else:
        raise SystemExit(f"unknown mode {mode!r}: dns, flood or reset")
