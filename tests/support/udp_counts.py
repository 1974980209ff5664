"""UDP traffic of known sizes for the peers probe's kernel test, run inside test pods.

- `sink IP PORT COUNT [echo]`: bind IP:PORT, receive COUNT datagrams (10 s at most),
  send each back when `echo`; prints "ready" once bound and the count received at the end.
- `send IP:PORT:SIZE:COUNT ...`: send COUNT datagrams of SIZE payload bytes to each, then,
  for a target whose sink echoes, read the echoes back (`send` reads whatever comes back
  within 2 s and prints how many it got).
"""

from __future__ import annotations

import socket
import sys
import time


def sink(address: str, port: int, count: int, echo: bool) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, port))
    s.settimeout(10)
    print("ready", flush=True)
    got = 0
    try:
        while got < count:
            data, peer = s.recvfrom(65536)
            got += 1
            if echo:
                s.sendto(data, peer)
    except TimeoutError:
        pass
    print(got, flush=True)


def send(targets: list[str]) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    for target in targets:
        address, port, size, count = target.split(":")
        for _ in range(int(count)):
            s.sendto(b"x" * int(size), (address, int(port)))
    s.settimeout(0.2)
    echoes, deadline = 0, time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            s.recvfrom(65536)
            echoes += 1
        except TimeoutError:
            continue
    print(echoes, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "sink":
        sink(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:] == ["echo"])
    else:
        send(sys.argv[2:])
