"""The agent's cost to the workload: the workload thread's own CPU time per operation.

What a new user measures on a quiet node: a workload's CPU time per operation without and
with the agent's probes. On loopback the tracepoint programs (and the kernel's work to fire
the tracepoints) run in the sending thread's context, so the thread's CPU time
(CLOCK_THREAD_CPUTIME_ID, as getrusage RUSAGE_THREAD) carries the whole per-packet cost.

The probes are loaded by the agent's own classes, EbpfCollector (collectors/ebpf.py) and
EventSource (events/source.py), with the default configuration, so the programs are exactly
the agent's; they are compiled once, then detached and re-attached between rounds (bcc keeps
the loaded programs), so rounds alternate quickly: without, with, without, ..., without, and
the overhead is the median over rounds of (with - mean of the two rounds without around it).
Three workloads, each in one thread on 127.0.0.1: a UDP flood to a closed port (each
datagram: a NET_RX softirq, a kfree_skb NO_SOCKET drop and an ICMP port-unreachable), a UDP
ping-pong between two sockets and a TCP request/response of 64 bytes each way. A last pass
with kernel.bpf_stats_enabled=1 prints each program's run_time_ns / run_cnt (own fdinfo);
the overhead rounds run with statistics off, as on a real node.

With ``--floor``, more states join a rotation on the UDP flood: a bpftrace ``count()`` on
skb:kfree_skb (what a user's one-liner costs to count drops), an empty classic tracepoint
program on skb:kfree_skb (the invocation alone) and an empty raw tracepoint program on
kfree_skb, each against the rounds without anything around it, so the agent's figure can be
read against the cheapest possible program on the same tracepoint on the same machine; two
empty programs say what a second program on the tracepoint adds, and the agent's probes
are in the same rotation, so its row compares with the floor's rounds directly; so are
bench/bench_drop_path.py's reconstruction of the drop body as a classic program and as a
BTF raw tracepoint (tp_btf: the namespace chain as plain loads), and an empty tp_btf.

    sudo flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_workload.py
        [--probes net_softirq,netiftxlat] [--events NET_SOFTIRQ_SLOW] [--all] [--rounds 5]
        [--floor] [--no-hosting]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (this checkout on sys.path, not the installed package)

from bench.bench_bpf import bpf_stats
from otel_netreceiver.bpf.probes import EVENT_PROBES
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import BPF_PROBES, EVENT_TYPES, EbpfConfig, EventsConfig
from otel_netreceiver.events.hosting import EventHosting
from otel_netreceiver.events.source import EventSource, settings_of
from otel_netreceiver.k8s.directory import NoPods

LOOP = "127.0.0.1"


def udp_flood(ops: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(ops):
        sock.sendto(b"x", (LOOP, 9))
    sock.close()


def ping_pong(a: socket.socket, a_ip: str, b: socket.socket, b_ip: str, ops: int) -> None:
    """``ops`` round trips between two UDP sockets bound to ``a_ip`` and ``b_ip`` and
    connected to each other; both closed after."""
    a.bind((a_ip, 0))
    b.bind((b_ip, 0))
    a.connect(b.getsockname())
    b.connect(a.getsockname())
    for _ in range(ops):
        a.send(b"ping")
        b.recv(64)
        b.send(b"pong")
        a.recv(64)
    a.close()
    b.close()


def udp_pingpong(ops: int) -> None:
    a, b = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    ping_pong(a, LOOP, b, LOOP, ops)


def tcp_request_response(ops: int) -> None:
    server = socket.socket()
    server.bind((LOOP, 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer, _ = server.accept()
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = b"q" * 64
    for _ in range(ops):
        client.sendall(request)
        peer.recv(64)
        peer.sendall(request)
        client.recv(64)
    for s in (client, peer, server):
        s.close()


WORKLOADS: dict[str, tuple[Callable[[int], None], int]] = {
    "udp_flood": (udp_flood, 100_000),
    "udp_pingpong": (udp_pingpong, 30_000),
    "tcp_rr": (tcp_request_response, 30_000),
}


def us_per_op(run: Callable[[int], None], ops: int) -> float:
    started = time.thread_time_ns()
    run(ops)
    return (time.thread_time_ns() - started) / ops / 1e3


class Attached:
    """The agent's loaded BPF objects, attached or detached as a whole between rounds."""

    def __init__(self, probes: list[str], events: list[str], host: bool = True) -> None:
        # as the agent builds them (collectors/registry.py): event handlers compiled into the
        # counting object on their tracepoint when both are on (events/hosting.py); not
        # ``host``: each event object of its own (what a refused hosted object falls back to)
        events_config, ebpf_config = EventsConfig(types=events), EbpfConfig(probes=probes)
        hosting = EventHosting(settings_of(events_config), ebpf_config.timing_sample) \
            if events and probes and host else None
        self.collector = EbpfCollector(ebpf_config, "/proc", NoPods(), hosting=hosting)
        self.source = EventSource(events_config, EbpfConfig(), "/proc", NoPods(),
                                  lambda event: None, hosting=hosting)
        self.source.start()
        # (bcc object, classic (tp, fn) pairs, raw tracepoint names) per loaded probe
        self._objects: list[tuple[str, Any, list[tuple[bytes, bytes]], list[bytes]]] = []
        # counting objects as loaded (probes sharing a tracepoint are one object), event ones
        objects = [("", name, spec, bpf) for name, (spec, bpf) in self.collector.objects().items()]
        objects += [("ev:", name, EVENT_PROBES[name], bpf)
                    for name, bpf in self.source._loaded.items()
                    if not any(bpf is other for *_, other in objects)]  # hosted: counted once
        for label, name, spec, bpf in objects:
            classic = [(f"{a.category}:{a.event}".encode(), a.function.encode())
                       for a in spec.attach]
            self._objects.append((label + name, bpf, classic, list(bpf.raw_tracepoint_fds)))
        for label, statuses in (("", self.collector.statuses()), ("ev:", self.source.statuses)):
            for name, reason in statuses.items():
                print(f"  {label}{name}: {'loaded' if not reason else 'unavailable: ' + reason}")

    def detach(self) -> None:
        for _, bpf, classic, raw in self._objects:
            if hasattr(type(bpf), "socket_hooks"):  # hooks that are not tracepoints (dns)
                bpf.socket_hooks(False)
            for tp in [tp for tp, _fn in classic if tp in bpf.tracepoint_fds]:
                bpf.detach_tracepoint(tp)
            for tp in [tp for tp in raw if tp in bpf.raw_tracepoint_fds]:
                bpf.detach_raw_tracepoint(tp)

    def attach(self) -> None:
        for _, bpf, classic, raw in self._objects:
            if hasattr(type(bpf), "socket_hooks"):
                bpf.socket_hooks(True)
            for tp, fn in [(tp, fn) for tp, fn in classic if tp not in bpf.tracepoint_fds]:
                bpf.attach_tracepoint(tp=tp, fn_name=fn)
            for tp in [tp for tp in raw if tp not in bpf.raw_tracepoint_fds]:
                bpf.attach_raw_tracepoint(tp=tp, fn_name=b"raw_tracepoint__" + tp)

    def program_stats(self) -> dict[str, tuple[int, int]]:
        """probe/function → (run_time_ns, run_cnt), from this process's own fdinfo."""
        stats = {}
        for label, bpf, _, _ in self._objects:
            for fn in bpf.funcs.values():
                text = Path(f"/proc/self/fdinfo/{fn.fd}").read_text()
                info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
                stats[f"{label}/{fn.name.decode()}"] = (int(info.get("run_time_ns", 0)),
                                                        int(info.get("run_cnt", 0)))
        return stats

    def close(self) -> None:
        self.source.close()
        self.collector.close()


FLOOR_TRACEPOINT = "skb:kfree_skb"


class Bpftrace:
    """``bpftrace -e 'tracepoint:skb:kfree_skb { @ = count(); }'`` started for a round and
    stopped after it (attached once it prints its "Attaching" line)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.path = shutil.which("bpftrace")

    def attach(self) -> None:
        assert self.path is not None
        self._proc = subprocess.Popen(
            [self.path, "-e", f"tracepoint:{FLOOR_TRACEPOINT} {{ @ = count(); }}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self._proc.stdout is not None
        for line in self._proc.stdout:  # "Attaching 1 probe..." comes before attaching ends
            if line.startswith("Attaching"):
                break
        time.sleep(0.5)

    def detach(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.communicate(timeout=10)
            self._proc = None


class EmptyProgram:
    """An empty classic tracepoint program on skb:kfree_skb: the invocation alone."""

    def __init__(self) -> None:
        from bcc import BPF

        self._bpf = BPF(text=b"int onr_floor(void *ctx) { return 0; }")
        self._attached = False

    def attach(self) -> None:
        self._bpf.attach_tracepoint(tp=FLOOR_TRACEPOINT.encode(), fn_name=b"onr_floor")
        self._attached = True

    def detach(self) -> None:
        if self._attached:
            self._bpf.detach_tracepoint(FLOOR_TRACEPOINT.encode())
            self._attached = False


class TwoEmptyPrograms:
    """Two empty classic programs on skb:kfree_skb: what a second program on a tracepoint
    adds (the kernel fills the trace record once and runs every attached program on it:
    kernel/trace/bpf_trace.c trace_call_bpf, bpf_prog_run_array)."""

    def __init__(self) -> None:
        self._programs = (EmptyProgram(), EmptyProgram())

    def attach(self) -> None:
        for program in self._programs:
            program.attach()

    def detach(self) -> None:
        for program in self._programs:
            program.detach()


class EmptyRawProgram:
    """An empty raw tracepoint program on kfree_skb (no trace record filled)."""

    def __init__(self) -> None:
        from bcc import BPF

        self._bpf = BPF(text=b"int onr_raw_floor(void *ctx) { return 0; }")
        self._fn = self._bpf.load_func(b"onr_raw_floor", BPF.RAW_TRACEPOINT)
        self._fd: int | None = None

    def attach(self) -> None:
        from bcc.libbcc import lib

        self._fd = lib.bpf_attach_raw_tracepoint(self._fn.fd,
                                                 FLOOR_TRACEPOINT.split(":")[1].encode())

    def detach(self) -> None:
        import os

        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class DropBody:
    """A variant of bench/bench_drop_path.py on skb:kfree_skb: the default set's drop body
    (namespace key, last-key slot, record budget) as a classic tracepoint program or as a
    BTF raw tracepoint (tp_btf), in the workload's rotation."""

    def __init__(self, variant: str) -> None:
        import bench_drop_path

        self._module = bench_drop_path
        self._program = bench_drop_path.build([variant]).get(variant)
        self.available = self._program is not None

    def attach(self) -> None:
        self._module.attach(self._program)

    def detach(self) -> None:
        self._module.detach(self._program)


def floors(rounds: int, agent: Attached) -> None:
    """Rounds: without, bpftrace, without, empty, without, ..., the agent's probes, without
    (``rounds`` of each): every state against the same rounds without anything."""
    states: list[tuple[str, Any]] = [("empty tracepoint program", EmptyProgram()),
                                     ("two empty tracepoint programs", TwoEmptyPrograms()),
                                     ("empty raw tracepoint", EmptyRawProgram()),
                                     ("the agent (probes above)", agent)]
    for label, variant in (("drop body, classic", "slot + budget/tick (now)"),
                           ("tp_btf: empty", "tp_btf: empty"),
                           ("tp_btf: drop body", "tp_btf: slot + budget/tick")):
        body = DropBody(variant)
        if body.available:  # tp_btf: a kernel with BTF; classic: always
            states.append((label, body))
    if Bpftrace().path:
        states.insert(0, ("bpftrace count()", Bpftrace()))
    run, ops = WORKLOADS["udp_flood"]
    without: list[float] = [us_per_op(run, ops)]
    with_: dict[str, list[float]] = {name: [] for name, _ in states}
    pairs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in states}
    for _ in range(rounds):
        for name, state in states:
            state.attach()
            try:
                with_[name].append(us_per_op(run, ops))
            finally:
                state.detach()
            without.append(us_per_op(run, ops))
            pairs[name].append((without[-2], without[-1]))
    print(f"floor on {FLOOR_TRACEPOINT}, udp_flood: {'state':<29} {'us/op':>6} {'delta ns':>9}"
          f" {'overhead':>9}")
    for name, _ in states:
        deltas = [w - (a + b) / 2 for w, (a, b) in zip(with_[name], pairs[name], strict=True)]
        ratios = [d / ((a + b) / 2) for d, (a, b) in zip(deltas, pairs[name], strict=True)]
        print(f"{'':<31} {name:<29} {statistics.median(with_[name]):>6.2f} "
              f"{statistics.median(deltas) * 1e3:>+9.0f} {statistics.median(ratios):>+9.1%}")
    print(f"{'':<31} {'without':<29} {statistics.median(without):>6.2f}")


def paired(without: list[float], with_: list[float]) -> tuple[float, float]:
    """Median of each round with the agent minus the mean of the rounds around it, absolute
    and relative: a step in the machine's speed (a neighbour's job starting) moves both
    sides of a pair, so it cancels instead of landing in one median."""
    deltas = [w - (without[i] + without[i + 1]) / 2 for i, w in enumerate(with_)]
    ratios = [d / ((without[i] + without[i + 1]) / 2) for i, d in enumerate(deltas)]
    return statistics.median(deltas), statistics.median(ratios)


def overhead(agent: Attached, rounds: int) -> None:
    """Alternating rounds: without, with, without, ..., without (rounds with the agent)."""
    without: dict[str, list[float]] = {w: [] for w in WORKLOADS}
    with_: dict[str, list[float]] = {w: [] for w in WORKLOADS}
    for index in range(2 * rounds + 1):
        attached = index % 2 == 1
        agent.attach() if attached else agent.detach()
        for name, (run, ops) in WORKLOADS.items():
            (with_ if attached else without)[name].append(us_per_op(run, ops))
    agent.detach()
    print(f"{'workload':<14} {'without us/op':>13} {'with us/op':>11} {'delta us':>9} "
          f"{'overhead':>9}   (delta, overhead: medians of pairs; rounds without / with)")
    for name in WORKLOADS:
        base, probed = statistics.median(without[name]), statistics.median(with_[name])
        delta, ratio = paired(without[name], with_[name])
        rounds_text = (" ".join(f"{v:.2f}" for v in without[name]) + " / "
                       + " ".join(f"{v:.2f}" for v in with_[name]))
        print(f"{name:<14} {base:>13.2f} {probed:>11.2f} {delta:>+9.2f} {ratio:>+9.1%}   "
              f"({rounds_text})")


def program_costs(agent: Attached) -> None:
    """One pass of every workload with BPF statistics on: each program's ns and runs per op."""
    with bpf_stats():
        agent.attach()
        before = agent.program_stats()
        ops = 0
        for run, count in WORKLOADS.values():
            run(count)
            ops += count
        after = agent.program_stats()
        agent.detach()
    print(f"{'probe/program':<32} {'runs':>9} {'ns/run':>8} {'share':>7}")
    deltas = {n: (after[n][0] - before[n][0], after[n][1] - before[n][1]) for n in after}
    total = sum(ns for ns, _ in deltas.values()) or 1
    for name, (ns, runs) in sorted(deltas.items(), key=lambda item: -item[1][0]):
        if runs:
            print(f"{name:<32} {runs:>9} {ns / runs:>8.1f} {ns / total:>7.1%}")
    print(f"programs' run time over all three workloads: {total / ops:.0f} ns per operation "
          f"({ops} operations)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", help="comma-separated collectors.ebpf probes "
                        "(default: the configuration's default)")
    parser.add_argument("--events", help="comma-separated event types (default: the "
                        "configuration's default; '' for none)")
    parser.add_argument("--all", action="store_true", help="every probe and every event type")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--floor", action="store_true", help="also the floor: bpftrace "
                        "count() and an empty program on skb:kfree_skb, alternating")
    parser.add_argument("--no-hosting", action="store_true", help="event programs as objects "
                        "of their own even where the counting object could host them")
    args = parser.parse_args()
    probes = list(EbpfConfig().probes) if args.probes is None else \
        [p for p in args.probes.split(",") if p]
    events = list(EventsConfig().types) if args.events is None else \
        [e for e in args.events.split(",") if e]
    if args.all:
        probes, events = list(BPF_PROBES), list(EVENT_TYPES)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    print(f"probes: {','.join(probes) or '-'}; events: {','.join(events) or '-'}"
          f"{'; not hosted' if args.no_hosting else ''}")
    agent = Attached(probes, events, not args.no_hosting)
    try:
        overhead(agent, args.rounds)
        program_costs(agent)
        if args.floor:
            floors(args.rounds, agent)
    finally:
        agent.close()
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
