"""Traffic for the fault-injection tests, and the kernel's own account of it.

A request/response server and client run in test pods across a wire (tests/support/wire.py);
nstat deltas, `ss -ti` RTTs and nftables counters say what the kernel really saw, so a test
can tell a fault that did not happen from a wrong diagnosis.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator

from tests.support.pods import Pod, nstat, run

# A request/response server: each request is 8 bytes (request size, answer size) + body.
REQUEST_SERVER = r"""
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1]))); srv.listen(128); print("ready", flush=True)
def serve(s):
    try:
        while len(head := s.recv(8, socket.MSG_WAITALL)) == 8:
            n, m = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
            if len(s.recv(n, socket.MSG_WAITALL)) < n: break
            s.sendall(b"y" * m)
    except OSError:
        pass
    s.close()
while True:
    s, _ = srv.accept(); threading.Thread(target=serve, args=(s,), daemon=True).start()
"""

# `conns` clients exchange requests for `seconds`, `pause` seconds apart (the machine is
# shared: a loop at full speed would measure nothing more); a failed connection is replaced
# (3 s timeout). Prints {"done": answered requests, "errors": {exception name: count}}.
REQUEST_CLIENT = r"""
import collections, json, socket, sys, threading, time
host, port, conns, seconds, up, down, pause = sys.argv[1], int(sys.argv[2]), \
    int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
deadline, done, errors = time.monotonic() + seconds, [], collections.Counter()
request = up.to_bytes(4, "big") + down.to_bytes(4, "big") + b"x" * up
def answer(c):
    got = 0
    while got < down:
        if not (chunk := c.recv(down - got)): raise EOFError
        got += len(chunk)
def run():
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=3) as c:
                while time.monotonic() < deadline:
                    c.sendall(request)
                    answer(c)
                    done.append(1)
                    time.sleep(pause)
        except (OSError, EOFError) as exc:
            errors[type(exc).__name__] += 1
threads = [threading.Thread(target=run) for _ in range(conns)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps({"done": len(done), "errors": errors}))
"""

def host_nstat() -> dict[str, int]:
    """The node's own namespace's counters, as tests/support/pods.py nstat reads a pod's."""
    values = {}
    for line in run("nstat", "-asz").stdout.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].isdigit():
            values[fields[0]] = int(fields[1])
    return values


@contextlib.contextmanager
def counting(*pods: Pod | None) -> Iterator[list[dict[str, int]]]:
    """nstat deltas over the block, one dict per pod (None: the node's own namespace)."""
    read = [(lambda p=p: nstat(p)) if p is not None else host_nstat for p in pods]
    before = [r() for r in read]
    deltas: list[dict[str, int]] = []
    yield deltas
    for r, first in zip(read, before, strict=True):
        last = r()
        deltas.append({k: last[k] - first.get(k, 0) for k in last if last[k] != first.get(k, 0)})


def srtt_ms(pod: Pod, peer: str) -> list[float]:
    """Smoothed RTTs of the pod's TCP sockets to ``peer`` as `ss -ti` prints them."""
    out = pod.exec("ss", "-tin", "dst", peer).stdout
    return [float(m) for m in re.findall(r"\brtt:([\d.]+)/", out)]


def rttvar_ms(pod: Pod, peer: str) -> list[float]:
    """RTT mean deviations of the pod's TCP sockets to ``peer`` (`ss -ti` rtt:srtt/rttvar)."""
    out = pod.exec("ss", "-tin", "dst", peer).stdout
    return [float(m) for m in re.findall(r"\brtt:[\d.]+/([\d.]+)", out)]


def nft(netns: str | None, rules: str) -> None:
    """Load nftables ``rules`` in ``netns`` (None: the node's own namespace)."""
    argv = ["nft", "-f", "-"] if netns is None else ["ip", "netns", "exec", netns, "nft", "-f", "-"]
    subprocess.run(argv, input=rules, text=True, check=True, capture_output=True)


def nft_packets(netns: str | None, table: str) -> int:
    """Packets the counters of an inet ``table`` saw: what a fault's rule really hit."""
    argv = ["nft", "list", "table", "inet", table]
    out = (run(*argv) if netns is None else run("ip", "netns", "exec", netns, *argv)).stdout
    return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))


def request_client(pod: Pod, peer: str, port: int, conns: int, seconds: float, up: int,
                   down: int, pause: float = 0.01) -> list[str]:
    """The argv running REQUEST_CLIENT in ``pod`` against REQUEST_SERVER at ``peer``."""
    return ["ip", "netns", "exec", pod.netns, sys.executable, "-c", REQUEST_CLIENT, peer,
            str(port), str(conns), str(seconds), str(up), str(down), str(pause)]
