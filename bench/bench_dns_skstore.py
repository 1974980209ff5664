"""Per-socket storage or a direct-mapped array against the node-wide hash for matching a DNS
query to its answer.

A measurement prototype, not the probe: bench_dns_skstore.c is the client side of
counting.c's matching cut to the store (port filter, DNS header, netns cookie, a clock read
per query and answer, a per-CPU latency slot per answer), compiled per variant:
- "no store": the common part alone (the floor the store is measured against);
- "hash N": counting.c's `pending` (BPF_HASH, preallocated, its key and value): insert at
  the query, lookup + delete at the answer; N entries (the probe's is 2 x max_pending);
- "sk K slots": BPF_MAP_TYPE_SK_STORAGE, K (id, sent) slots per client socket: the query
  gets the socket's storage (created on its first query) and takes a free slot, the answer
  finds the slot by id and clears it ("direct": skb->sk passed as is, without
  bpf_sk_fullsock: the helper checks sk_fullsock itself);
- "array N": a direct-mapped BPF_ARRAY of N 32-byte slots in buckets of two (one cache
  line), the bucket a multiplicative hash of (netns, port, id): the query claims a free (or
  expired) slot with a compare-and-swap on its u64 word (id, port, attempts, expired, sent
  in 65.5 us units), the answer finds it by key (the cookie compared in the slot's second
  word) and releases it with a compare-and-swap; no helper call (the verifier inlines the
  lookup), no lock, no freelist ("plain": the same with plain stores, what the atomics cost).
Each is attached alone (bpf_link, cgroup_skb egress and ingress on the cgroup v2 root), in
rounds alternating over the variants and the workloads; per variant the kernel's
run_time_ns / run_cnt per program (kernel.bpf_stats_enabled=1, restored afterwards; its two
clock reads included), medians of the rounds. Egress runs at the client's query and the
server's answer, ingress at the server's query and the client's answer: the server's half
is the same in every variant, so a variant's cost per client packet over "no store" is
twice the difference of the means. Workloads, on 127.0.0.1:53:
- dns: one connected client socket, ids in sequence (bench_dns_hook.py's ping-pong);
- new socket: a new socket per query and a random id (glibc's res_send and Go's resolver
  do this): the storage is created at each query and freed when the socket goes;
- 64 sockets: 64 long-lived client sockets, each with a query out at once, random ids
  (64 entries live in the hash, 64 storages touched in turn).
"thread us/op" is the workload thread's CPU time per query: it also holds what the
programs do not (the storage freed with the socket: net/core/sock.c __sk_destruct calls
bpf_sk_storage_free), noisy on this shared machine.
Then the timeout sweep the storage design would need (user space cannot walk the storages):
a bpf_iter program over the storage map, timed over --sweep sockets with a query out each.
Last, the array's sweep (user space cannot compare-and-swap a map value): a
BPF_PROG_TYPE_SYSCALL program run by BPF_PROG_TEST_RUN, bpf_loop over the buckets
(bench/dns_array_sweep.py loads it through bpf(2)): its cost per cycle with --array-sweep
slots outstanding, and an exactly-once check, the sweep looping on one CPU while 64
sockets' answers come on the other, every attempt due at once: each query answered once (in
time, or late after the sweep took it), each one the sweep took answered late.

    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_skstore.py [--rounds 5] \
        [--ops 20000] [--only 'no store|hash 32768|...'] [--sweep 1000] [--array-sweep 1000]
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import os
import random
import socket
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_bpf import bpf_stats
from bench.bench_dns_hook import QUERY, dns_pingpong

SOURCE = Path(__file__).with_suffix(".c")
VARIANTS: dict[str, dict[str, int]] = {
    "no store": {"STORE": 0},
    "hash 32768": {"STORE": 1, "PENDING_ENTRIES": 32768},
    "hash 8192": {"STORE": 1, "PENDING_ENTRIES": 8192},
    "sk 4 slots": {"STORE": 2, "SLOTS": 4, "FULLSOCK": 1},
    "sk 8 slots": {"STORE": 2, "SLOTS": 8, "FULLSOCK": 1},
    "sk 4 slots, direct": {"STORE": 2, "SLOTS": 4, "FULLSOCK": 0},
    "array 32768": {"STORE": 3, "ARRAY_SLOTS": 32768, "WAYS": 2, "ATOMIC": 1},
    "array 16384": {"STORE": 3, "ARRAY_SLOTS": 16384, "WAYS": 2, "ATOMIC": 1},
    "array 8192": {"STORE": 3, "ARRAY_SLOTS": 8192, "WAYS": 2, "ATOMIC": 1},
    "array 32768, plain": {"STORE": 3, "ARRAY_SLOTS": 32768, "WAYS": 2, "ATOMIC": 0},
}
POOL = 64


def _answer(server: socket.socket) -> None:
    packet, peer = server.recvfrom(512)
    server.sendto(packet[:2] + b"\x81\x80" + packet[4:], peer)


def new_socket_pingpong(ops: int) -> None:
    """A new connected socket per query, a random id (res_send, Go's net.Dial("udp"))."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    for _ in range(ops):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.connect(("127.0.0.1", 53))
        client.send(struct.pack("!H", random.getrandbits(16)) + QUERY[2:])
        _answer(server)
        client.recv(512)
        client.close()
    server.close()


def pool_pingpong(ops: int) -> None:
    """POOL long-lived sockets, each with one query out at a time, random ids."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(POOL)]
    for client in clients:
        client.connect(("127.0.0.1", 53))
    for _ in range(ops // POOL):
        for client in clients:
            client.send(struct.pack("!H", random.getrandbits(16)) + QUERY[2:])
        for _ in clients:
            _answer(server)
        for client in clients:
            client.recv(512)
    for client in clients:
        client.close()
    server.close()


WORKLOADS: dict[str, Callable[[int], None]] = {
    "dns": dns_pingpong, "new socket": new_socket_pingpong, "64 sockets": pool_pingpong}


class Variant:
    """One compiled variant and its two programs' bpf_links (attached only while measured)."""

    def __init__(self, defines: dict[str, int], root: str) -> None:
        from bcc import BPF

        if "ARRAY_SLOTS" in defines:  # the hash's top bits: one bucket of WAYS slots each
            defines = {**defines, "BUCKET_BITS":
                       (defines["ARRAY_SLOTS"] // defines["WAYS"]).bit_length() - 1}
        cflags = [f"-D{k}={v}" for k, v in defines.items()]
        self.bpf = BPF(text=SOURCE.read_text().encode(), cflags=cflags)
        self.fds = {side: self.bpf.load_func(f"store_{side}".encode(), BPF.CGROUP_SKB).fd
                    for side in ("egress", "ingress")}
        self.root = root
        self.links: list[int] = []

    def attach(self, on: bool) -> None:
        from otel_netreceiver.bpf.socket_hooks import (
            BPF_CGROUP_INET_EGRESS,
            BPF_CGROUP_INET_INGRESS,
            link_create,
        )

        while self.links:
            os.close(self.links.pop())
        if not on:
            return
        target = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for side, kind in (("egress", BPF_CGROUP_INET_EGRESS),
                               ("ingress", BPF_CGROUP_INET_INGRESS)):
                self.links.append(link_create(self.fds[side], target, kind))
        finally:
            os.close(target)

    def run_time(self) -> dict[str, tuple[int, int]]:
        out = {}
        for side, fd in self.fds.items():
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
            info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
            out[side] = (int(info["run_time_ns"]), int(info["run_cnt"]))
        return out

    def outcome(self) -> tuple[int, int, int, int]:
        """(answers timed, lost, unmatched, other) so far: every query matched, or the store
        failed; other: the array's late answers, races and evictions (none expected here)."""
        table = self.bpf["latency"]
        sums = [sum(table[table.Key(i)]) for i in range(64)]
        return sum(sums[:59]), sums[62], sums[63], sum(sums[59:62])


def measure(variant: Variant, run: Callable[[int], None], ops: int) -> dict[str, float]:
    variant.attach(True)
    try:
        before = variant.run_time()
        started = time.thread_time_ns()
        run(ops)
        thread = (time.thread_time_ns() - started) / ops / 1e3
        after = variant.run_time()
    finally:
        variant.attach(False)
    out = {"thread": thread}
    for side in after:
        runs = max(1, after[side][1] - before[side][1])
        out[side] = (after[side][0] - before[side][0]) / runs
    return out


def report(variants: dict[str, Variant], results: dict[tuple[str, str, str], list[float]],
           rounds: int) -> None:
    print(f"{'variant':<22} {'workload':<11} {'egress':>7} {'ingress':>7} {'+ per query':>12} "
          f"{'thread us/op':>12}   ns/run, medians of {rounds}; answers, lost, unmatched")
    for workload in WORKLOADS:
        floor = {s: statistics.median(results[("no store", workload, s)])
                 for s in ("egress", "ingress")} if "no store" in variants else None
        for name in variants:
            cells = {s: statistics.median(results[(name, workload, s)])
                     for s in ("egress", "ingress", "thread")}
            extra = "" if floor is None else \
                f"{cells['egress'] + cells['ingress'] - floor['egress'] - floor['ingress']:>12.1f}"
            print(f"{name:<22} {workload:<11} {cells['egress']:>7.1f} {cells['ingress']:>7.1f} "
                  f"{extra:>12} {cells['thread']:>12.2f}")
    for name, variant in variants.items():
        print(f"{name}: answers/lost/unmatched/other {variant.outcome()}")


def sweep_check(root: str, sockets: int) -> None:
    """The timeout sweep over the storages: a bpf_iter program on the map (bcc: BPF_ITER's
    name, loaded as BPF.TRACING, attached with libbcc's bcc_iter_attach and the map's fd
    as union bpf_iter_link_info), over ``sockets`` sockets with a query out each."""
    from bcc import BPF, lib

    variant = Variant({"STORE": 2, "SLOTS": 4, "FULLSOCK": 1, "ITER": 1, "TIMEOUT_MS": 0},
                      root)
    try:
        prog = variant.bpf.load_func(b"bpf_iter__bpf_sk_storage_map", BPF.TRACING)
    except Exception as exc:  # bcc turns the kernel's EPERM into "Need super-user privileges"
        print(f"sweep: bcc could not load the bpf_sk_storage_map iterator: {exc}")
        variant.bpf.cleanup()
        return
    map_fd = lib.bpf_table_fd(variant.bpf.module, b"sk_pending")
    lib.bcc_iter_attach.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
    info = ctypes.c_uint32(map_fd)  # union bpf_iter_link_info { struct { __u32 map_fd; } map; }
    link = lib.bcc_iter_attach(prog.fd, ctypes.byref(info), 4)
    if link < 0:
        raise OSError(-link, "bcc_iter_attach")
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(sockets)]
    variant.attach(True)
    try:
        for client in clients:
            client.connect(("127.0.0.1", 53))
            client.send(struct.pack("!H", random.getrandbits(16)) + QUERY[2:])
    finally:
        variant.attach(False)
    table = variant.bpf["sweep"]
    for walk in ("first (takes every slot)", "second (nothing left)"):
        before = [table[table.Key(i)].value for i in range(3)]
        fd = lib.bcc_iter_create(link)
        started = time.perf_counter_ns()
        while os.read(fd, 4096):
            pass
        took = time.perf_counter_ns() - started
        os.close(fd)
        seen = [table[table.Key(i)].value - before[i] for i in range(3)]
        print(f"sweep {walk}: {seen[0]} storages visited, {seen[1]} outstanding, {seen[2]} "
              f"timeouts taken, {took / 1e3:.0f} us ({took / max(1, seen[0]):.0f} ns/storage)")
    for client in clients:
        client.close()
    server.close()
    os.close(link)
    variant.bpf.cleanup()


ITER_TARGETS = ("bpf_sk_storage_map", "bpf_map_elem", "bpf_map", "udp", "tcp", "task")


def iter_targets() -> None:
    """Which bpf_iter targets this kernel lets a program load for: a two-instruction
    BPF_PROG_TYPE_TRACING program, expected_attach_type BPF_TRACE_ITER, attach_btf_id the
    target's bpf_iter_<target> function (bpf/fentry.py's raw BPF_PROG_LOAD, no compiler)."""
    from otel_netreceiver.bpf.btf import Btf

    btf, libc = Btf.load(), ctypes.CDLL(None, use_errno=True)
    insns = ctypes.create_string_buffer(bytes([0xB7] + [0] * 7 + [0x95] + [0] * 7), 16)
    licence, log = ctypes.create_string_buffer(b"GPL"), ctypes.create_string_buffer(1 << 16)
    for target in ITER_TARGETS:
        type_id = btf.function_id(f"bpf_iter_{target}")
        if type_id is None:
            print(f"iter/{target}: not in this kernel's BTF")
            continue
        attr = bytearray(128)  # union bpf_attr, BPF_PROG_LOAD (offsets: uapi/linux/bpf.h)
        struct.pack_into("<IIQQIIQ", attr, 0, 26, 2, ctypes.addressof(insns),
                         ctypes.addressof(licence), 1, len(log), ctypes.addressof(log))
        struct.pack_into("<16s", attr, 48, b"onr_iter_try")
        struct.pack_into("<I", attr, 68, 28)  # BPF_TRACE_ITER
        struct.pack_into("<I", attr, 108, type_id)
        buf = ctypes.create_string_buffer(bytes(attr), 128)
        fd = libc.syscall(321, 5, buf, 128)  # x86_64 bpf(BPF_PROG_LOAD)
        if fd >= 0:
            os.close(fd)
            print(f"iter/{target}: loads")
        else:
            err = ctypes.get_errno()
            print(f"iter/{target}: refused, {errno.errorcode.get(err, err)} "
                  f"({log.value.decode(errors='replace').strip()[:60]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--only", default="", help="variant names separated by |")
    parser.add_argument("--sweep", type=int, default=1000, help="sockets for the bpf_iter "
                        "timeout sweep check (0: none)")
    parser.add_argument("--array-sweep", type=int, default=1000, help="outstanding slots for "
                        "the array's in-kernel sweep, and its exactly-once check (0: none)")
    args = parser.parse_args()
    from otel_netreceiver.bpf.socket_hooks import cgroup_root

    root = cgroup_root()
    if root is None:
        raise SystemExit("no cgroup v2 hierarchy")
    chosen = [n for n in VARIANTS if not args.only or n in args.only.split("|")]
    variants: dict[str, Any] = {name: Variant(VARIANTS[name], root) for name in chosen}
    results: dict[tuple[str, str, str], list[float]] = {}
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    with bpf_stats():
        for _ in range(args.rounds):
            for workload, run in WORKLOADS.items():
                for name, variant in variants.items():
                    for key, value in measure(variant, run, args.ops).items():
                        results.setdefault((name, workload, key), []).append(value)
        for variant in variants.values():
            variant.attach(False)
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    report(variants, results, args.rounds)
    for variant in variants.values():
        variant.bpf.cleanup()
    if args.sweep:
        iter_targets()
        sweep_check(root, args.sweep)
    if args.array_sweep:
        array_sweep(root, args.array_sweep)


def array_sweep(root: str, outstanding: int) -> None:
    """The array's timeout sweep (bench/dns_array_sweep.py): its cost per cycle at both
    sizes, then exactly once against answers on the other CPU (every attempt due at once)."""
    from bench.dns_array_sweep import cost, exactly_once

    with bpf_stats():
        cost(lambda size: Variant({**VARIANTS["array 8192"], "ARRAY_SLOTS": size}, root).bpf,
             (32768, 8192), outstanding)
        variant = Variant({**VARIANTS["array 8192"], "TIMEOUT_MS": 0}, root)
        try:
            exactly_once(variant, pool_pingpong, 64 * 300)
        finally:
            variant.bpf.cleanup()


if __name__ == "__main__":
    main()
