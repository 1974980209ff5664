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

With ``--rev`` (repeatable; '.': this checkout's), events.c alone as at each git revision
instead, compiled into the event object the agent loads (EventSource), in rounds that
alternate over the revisions (every other round in reverse order) and a round with no
program ("none"), each workload once per revision per round: per revision and workload
the kernel's run_time_ns / run_cnt of dnsev_egress and dnsev_ingress (a tail call's time
is its caller's) and the workload thread's CPU per operation, medians of the rounds.
dnsev_no_socket stays attached to skb:kfree_skb for the whole run, every revision's at
once: its figure (on a flood of datagrams to a closed port, each a NO_SOCKET drop) is its
own program's, the thread's CPU on that workload is not any one revision's.

    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_events.py --rev main --rev . \
        [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_bpf import bpf_stats, flood, own_stats
from bench.bench_dns_hook import dns_pingpong, paired, udp_pingpong


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


def _merge_base() -> str:
    """main before this branch."""
    here = Path(__file__).parent
    return subprocess.run(["git", "merge-base", "HEAD", "main"], check=True,
                          capture_output=True, text=True, cwd=here).stdout.strip()


def _main_text(path: str) -> str:
    return subprocess.run(["git", "show", f"{_merge_base()}:otel_netreceiver/bpf/probes/dns/"
                           f"{path}"], check=True, capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout


def _old_events(spec: Any) -> Any:
    """events.c as on main before this branch."""
    return _events_at(spec, _merge_base())


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


def _events_at(spec: Any, rev: str) -> Any:
    """The event spec with events.c as at ``rev`` ('.' or '': the checkout's)."""
    from otel_netreceiver.bpf.programs import render_struct_of

    if rev in ("", "."):
        return spec
    old = subprocess.run(["git", "show", f"{rev}:otel_netreceiver/bpf/probes/dns/events.c"],
                         check=True, capture_output=True, text=True,
                         cwd=Path(__file__).parent).stdout

    def text(_: str, formats: Any) -> str:
        return old.replace("KFREE_ARGS_STRUCT", render_struct_of(spec.structs[0], formats))
    return replace(spec, text=text)


def _load_events(spec: Any) -> Any:
    from otel_netreceiver.bpf.probes import EVENT_PROBES

    saved, EVENT_PROBES["dns"] = EVENT_PROBES["dns"], spec
    try:
        return _events()
    finally:
        EVENT_PROBES["dns"] = saved


WORKLOADS: tuple[tuple[str, Callable[[int], None], int], ...] = (
    ("dns", dns_pingpong, 20_000), ("nxdomain", nxdomain_pingpong, 20_000),
    ("tcp_pipelined", tcp_pipelined, 10_000), ("udp (not DNS)", udp_pingpong, 30_000),
    ("closed port", flood, 30_000))
SIDES = ("dnsev_egress", "dnsev_ingress", "dnsev_no_socket")


def _round(hooks: Any, results: dict[tuple[str, str, str], list[float]], rev: str) -> None:
    """Each workload once with ``hooks`` attached (None: nothing attached)."""
    fds = {n: hooks.funcs[n.encode()].fd for n in SIDES} if hooks is not None else {}
    for workload, run, ops in WORKLOADS:
        if hooks is not None:
            hooks.socket_hooks(True)
        before, started = own_stats(fds), time.thread_time_ns()
        run(ops)
        cpu, after = time.thread_time_ns() - started, own_stats(fds)
        if hooks is not None:
            hooks.socket_hooks(False)
        results.setdefault((rev, workload, "us/op"), []).append(cpu / ops / 1e3)
        for side in fds:
            runs = after[side][1] - before[side][1]
            if runs > 0:  # a program the workload does not reach: no figure
                results.setdefault((rev, workload, side), []).append(
                    (after[side][0] - before[side][0]) / runs)


def compare(revs: list[str], rounds: int) -> None:
    """The ``--rev`` mode (module docstring)."""
    from otel_netreceiver.bpf.probes import EVENT_PROBES

    sources = {rev: _load_events(_events_at(EVENT_PROBES["dns"], rev)) for rev in revs}
    hooks = {rev: source._loaded["dns"] for rev, source in sources.items()}
    for h in hooks.values():
        h.socket_hooks(False)
    results: dict[tuple[str, str, str], list[float]] = {}
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    try:
        with bpf_stats():
            for n in range(rounds):
                _round(None, results, "none")
                order = list(hooks.items())  # every other round reversed: no place favoured
                for rev, h in order if n % 2 == 0 else order[::-1]:
                    _round(h, results, rev)
    finally:
        for source in sources.values():
            source.close()
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    print(f"{'events.c at':<14} {'workload':<15} {'us/op':>7} {'delta ns':>9} "
          f"{'egress':>7} {'ingress':>7} {'drop':>7}  ns/run, medians of {rounds}")
    for rev in ["none", *revs]:
        for workload, _, _ in WORKLOADS:
            us = statistics.median(results[(rev, workload, "us/op")])
            base = statistics.median(results[("none", workload, "us/op")])
            ns = [f"{statistics.median(results[(rev, workload, s)]):>7.1f}"
                  if (rev, workload, s) in results else f"{'-':>7}" for s in SIDES]
            print(f"{rev:<14} {workload:<15} {us:>7.3f} {(us - base) * 1e3:>+9.0f} "
                  f"{' '.join(ns)}")


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
    parser.add_argument("--rev", action="append", help="events.c alone at these git revisions "
                        "(repeatable; '.': this checkout's), alternating (module docstring)")
    args = parser.parse_args()
    if args.rev:
        compare(args.rev, args.rounds)
        return
    from otel_netreceiver.bpf.probes import EVENT_PROBES, PROBES

    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    print(f"{'program':<32} {'workload':<22} {'us/query':>9} {'delta ns':>9} {'overhead':>8}"
          "  kernel ns per invocation")
    with bpf_stats():
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
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
