"""What the DNS name checks and the DNS failure records cost a DNS query, on this kernel.

Four programs on the same workloads (bench_dns_hook.py's DNS ping-pong over 127.0.0.1:53,
rcode NOERROR; the same with NXDOMAIN answers under changing names; two queries per TCP
segment, as glibc pipelines them; a UDP ping-pong off the DNS ports): the dns counting
program and the event program (events.c: its own client-side hooks and name-keeping
table), each as on the merge-base with main (``git show``) and as on this branch. Each is
attached alone in alternating rounds without/with; the figure is the median of paired differences
per query (thread CPU time), and the kernel's own run time per invocation
(kernel.bpf_stats_enabled, restored afterwards).

    sudo flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_events.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_dns_hook import dns_pingpong, paired, udp_pingpong

STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def nxdomain_pingpong(ops: int) -> None:
    """Queries for names under a search suffix answered NXDOMAIN (ndots runs start)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(("127.0.0.1", 53))
    for i in range(ops):
        label = f"h{i % 5000:04d}".encode()
        query = (struct.pack("!HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + bytes([len(label)])
                 + label + b"\x01a\x03svc\x07cluster\x05local\x00" + struct.pack("!HH", 1, 1))
        client.send(query)
        packet, peer = server.recvfrom(512)
        server.sendto(packet[:2] + b"\x81\x83" + packet[4:], peer)
        client.recv(512)
    client.close()
    server.close()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return data


def tcp_pipelined(ops: int) -> None:
    """An A and an AAAA query in one TCP segment (glibc's use-vc/TCP fallback, one writev),
    both answers in one segment back: the second message is the tail-called program's."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 53))
    listener.listen()
    client = socket.create_connection(("127.0.0.1", 53))
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = listener.accept()[0]
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    name = b"\x03www\x07example\x03com\x00"
    for i in range(ops):
        pair = b""
        for k, qtype in enumerate((1, 28)):
            body = (struct.pack("!HHHHHH", (2 * i + k) & 0xFFFF, 0x0100, 1, 0, 0, 0) + name
                    + struct.pack("!HH", qtype, 1))
            pair += struct.pack("!H", len(body)) + body
        client.sendall(pair)
        got = _recv_exact(server, len(pair))
        size = len(pair) // 2  # each message: prefix, id, flags, the rest as asked
        answers = b"".join(got[o:o + 4] + b"\x81\x80" + got[o + 6:o + size]
                           for o in (0, size))
        server.sendall(answers)
        _recv_exact(client, len(answers))
    for sock in (client, server, listener):
        sock.close()


def _main_text(path: str) -> str:
    here = Path(__file__).parent
    base = subprocess.run(["git", "merge-base", "HEAD", "main"], check=True, capture_output=True,
                          text=True, cwd=here).stdout.strip()  # main before this branch
    return subprocess.run(["git", "show", f"{base}:otel_netreceiver/bpf/probes/dns/{path}"],
                          check=True, capture_output=True, text=True, cwd=here).stdout


def _old_events(spec: Any) -> Any:
    """events.c as on main: no attempts, the first message of a TCP segment only."""
    from otel_netreceiver.bpf.programs import render_struct_of
    from otel_netreceiver.bpf.socket_hooks import attacher

    old = _main_text("events.c")

    def text(_: str, formats: Any) -> str:
        return old.replace("KFREE_ARGS_STRUCT", render_struct_of(spec.structs[0], formats))
    return replace(spec, text=text, finish=attacher("dnsev"))


def _old_counting(spec: Any) -> Any:
    from otel_netreceiver.bpf.programs import render_struct_of

    old = _main_text("counting.c")

    def text(_: str, formats: Any) -> str:
        return old.replace("KFREE_ARGS_STRUCT", render_struct_of(spec.structs[0], formats))
    return replace(spec, text=text)


def _counting(spec: Any) -> Any:
    from otel_netreceiver.bpf.loader import BpfLoader
    from otel_netreceiver.collectors.ebpf import CountingRender
    from otel_netreceiver.config.schema import EbpfConfig

    config = EbpfConfig(probes=["dns"])
    loaded = BpfLoader(config, "/proc", "bench").load_all([spec], CountingRender(config, True))
    return loaded["dns"]


def _events() -> Any:
    from otel_netreceiver.config.schema import EbpfConfig, EventsConfig
    from otel_netreceiver.events.source import EventSource
    from otel_netreceiver.k8s.directory import NoPods

    types = ["DNS_TIMEOUT", "DNS_LATE_ANSWER", "DNS_SERVFAIL", "DNS_NXDOMAIN_BURST"]
    return EventSource(EventsConfig(types=types), EbpfConfig(), "/proc", NoPods(),
                       lambda e: None)


def prog_stats(names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    out = json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], check=True,
                                    capture_output=True, text=True).stdout)
    return {p["name"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in out if p.get("name") in names}


def measure(label: str, attach: Callable[[bool], None], rounds: int,
            names: tuple[str, ...]) -> None:
    for workload, run, ops in (("dns_pingpong", dns_pingpong, 20_000),
                               ("nxdomain_pingpong", nxdomain_pingpong, 20_000),
                               ("tcp_pipelined", tcp_pipelined, 10_000),
                               ("udp_pingpong (not DNS)", udp_pingpong, 30_000)):
        before = prog_stats(names)
        base, delta = paired(attach, run, ops, rounds)
        after = prog_stats(names)
        per = {n: (after[n][0] - before.get(n, (0, 0))[0])
               / max(1, after[n][1] - before.get(n, (0, 0))[1]) for n in after}
        inv = " ".join(f"{n}={v:.0f}ns" for n, v in sorted(per.items()))
        print(f"{label:<32} {workload:<22} {base:>9.3f} {delta * 1e3:>+9.0f} "
              f"{delta / base:>+8.1%}  {inv}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from otel_netreceiver.bpf.probes import EVENT_PROBES, PROBES

    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    print(f"{'program':<32} {'workload':<22} {'us/query':>9} {'delta ns':>9} {'overhead':>8}"
          "  kernel ns per invocation")
    previous = STATS.read_text().strip()
    STATS.write_text("1")
    try:
        for label, spec in (("counting.c as on main", _old_counting(PROBES["dns"])),
                            ("counting.c on this branch", PROBES["dns"])):
            probe = _counting(spec)
            try:
                probe.socket_hooks(False)
                measure(label, probe.socket_hooks, args.rounds, ("dns_egress", "dns_ingress"))
            finally:
                probe.cleanup()
        for label, spec in (("events.c as on main, alone", _old_events(EVENT_PROBES["dns"])),
                            ("events.c on this branch, alone", EVENT_PROBES["dns"])):
            saved, EVENT_PROBES["dns"] = EVENT_PROBES["dns"], spec
            try:
                source = _events()
            finally:
                EVENT_PROBES["dns"] = saved
            try:
                hooks = source._loaded["dns"]
                hooks.socket_hooks(False)
                # dnsev_tcp_next's time is in its caller's: a tail call is not a new run
                measure(label, hooks.socket_hooks, args.rounds, ("dnsev_egress", "dnsev_ingress"))
            finally:
                source.close()
    finally:
        STATS.write_text(previous)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
