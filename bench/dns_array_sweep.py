"""The direct-mapped array's timeout sweep, in the kernel: load, cost per cycle, exactly once.

User space cannot compare-and-swap a map value, so the sweep that takes an outstanding
query past its timeout against the answer taking it on another CPU runs as a BPF program:
bench_dns_skstore.c's ``array_sweep``, a BPF_PROG_TYPE_SYSCALL program (no attach point,
run by BPF_PROG_TEST_RUN: kernel/bpf/syscall.c bpf_prog_test_run_syscall; sleepable only,
"Syscall programs can only be sleepable" from kernel/bpf/verifier.c) that calls bpf_loop
over the buckets with
``array_sweep_one`` as the callback. bcc loads neither: it has no SYSCALL flags
(BPF_F_SLEEPABLE) and does not link a callback (a function address is left unrelocated,
src_reg 0, imm 0), and the verifier wants BTF func_info for a program with a callback
("missing btf func_info", verifier.c check_ld_imm). So bcc compiles (maps created,
their fds in the bytecode), and here the two functions' bytecode is joined, the callback's
address made a BPF_PSEUDO_FUNC load, a four-type BTF (long, a prototype, two static
functions) loaded, and the program loaded with its func_info through bpf(2), as
otel_netreceiver/bpf/tp_btf.py loads tp_btf programs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# include/uapi/linux/bpf.h
BPF_PROG_LOAD, BPF_PROG_TEST_RUN, BPF_BTF_LOAD = 5, 10, 18
BPF_PROG_TYPE_SYSCALL, BPF_F_SLEEPABLE, BPF_PSEUDO_FUNC, BPF_FUNC_LOOP = 31, 1 << 4, 4, 181
SYS_BPF_X86_64 = 321
_LOG = 1 << 20
# bench_dns_skstore.c's slot word
W_SENT_SHIFT, W_ATTEMPT, W_EXPIRED = 36, 1 << 32, 1 << 35


def _bpf(command: int, attr: bytearray) -> tuple[int, bytes]:
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(bytes(attr), len(attr))
    fd = int(libc.syscall(SYS_BPF_X86_64, command, buffer, len(attr)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{errno.errorcode.get(err, err)}: {os.strerror(err)}")
    return fd, buffer.raw


def btf(names: tuple[str, str]) -> bytes:
    """[1] INT long, [2] FUNC_PROTO long (long i, long ctx), [3], [4] static FUNCs ``names``
    (include/uapi/linux/btf.h; the verifier checks only a global function's arguments)."""
    strings = b"\0long\0i\0ctx\0" + b"".join(n.encode() + b"\0" for n in names)
    off = {s: strings.index(b"\0" + s.encode() + b"\0") + 1 for s in ("long", "i", "ctx", *names)}
    types = struct.pack("<IIII", off["long"], 1 << 24, 8, (1 << 24) | 64)  # INT, signed 64
    types += struct.pack("<III", 0, (13 << 24) | 2, 1)  # FUNC_PROTO, 2 params, returns long
    types += struct.pack("<IIII", off["i"], 1, off["ctx"], 1)
    for name in names:
        types += struct.pack("<III", off[name], 12 << 24, 2)  # FUNC, static, proto 2
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def load(bpf: Any, main: bytes = b"array_sweep", callback: bytes = b"array_sweep_one") -> int:
    """The sweep program's fd (module docstring), or OSError with the verifier's last words."""
    code, tail = bytearray(bpf.dump_func(main)), bpf.dump_func(callback)
    count = len(code) // 8
    calls = [i for i in range(count) if code[8 * i] == 0x85
             and struct.unpack_from("<i", code, 8 * i + 4)[0] == BPF_FUNC_LOOP]
    loads = [i for i in range(count - 1) if code[8 * i] == 0x18 and code[8 * i + 1] >> 4 == 0
             and struct.unpack_from("<i", code, 8 * i + 4)[0] == 0 and i < calls[0]]
    at = loads[-1]  # the callback's address, unrelocated: r2 = 0 before the bpf_loop call
    code[8 * at + 1] = (code[8 * at + 1] & 0xF) | BPF_PSEUDO_FUNC << 4
    struct.pack_into("<i", code, 8 * at + 4, count - at - 1)  # relative to the next insn
    blob = ctypes.create_string_buffer(btf((main.decode(), callback.decode())))
    log = ctypes.create_string_buffer(_LOG)
    attr = bytearray(32)
    struct.pack_into("<QQIII", attr, 0, ctypes.addressof(blob), ctypes.addressof(log),
                     len(blob.raw) - 1, _LOG, 1)
    btf_fd, _ = _bpf(BPF_BTF_LOAD, attr)
    try:
        return _load_prog(bytes(code) + tail, btf_fd, count)
    finally:
        os.close(btf_fd)


def _load_prog(code: bytes, btf_fd: int, callback_at: int) -> int:
    insns = ctypes.create_string_buffer(code, len(code))
    funcs = ctypes.create_string_buffer(struct.pack("<IIII", 0, 3, callback_at, 4), 16)
    licence, log = ctypes.create_string_buffer(b"GPL"), ctypes.create_string_buffer(_LOG)
    attr = bytearray(128)  # union bpf_attr, BPF_PROG_LOAD
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_SYSCALL, len(code) // 8,
                     ctypes.addressof(insns), ctypes.addressof(licence), 1, _LOG,
                     ctypes.addressof(log))
    struct.pack_into("<I16s", attr, 44, BPF_F_SLEEPABLE, b"array_sweep")
    struct.pack_into("<IIQI", attr, 72, btf_fd, 8, ctypes.addressof(funcs), 2)
    try:
        return _bpf(BPF_PROG_LOAD, attr)[0]
    except OSError as exc:
        tail = log.value.decode(errors="replace").strip().splitlines()[-3:]
        raise OSError(exc.errno, f"sweep load refused ({exc.strerror}): "
                      f"{' / '.join(tail)}") from None


def run(fd: int) -> tuple[int, int]:
    """One sweep (BPF_PROG_TEST_RUN, no context): (bpf_loop's return, thread CPU ns)."""
    attr = bytearray(80)
    struct.pack_into("<I", attr, 0, fd)
    started = time.thread_time_ns()
    _, raw = _bpf(BPF_PROG_TEST_RUN, attr)
    return struct.unpack_from("<i", raw, 4)[0], time.thread_time_ns() - started


def run_stats(fd: int) -> tuple[int, int]:
    info = dict(line.split(":\t", 1) for line in
                Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines() if ":\t" in line)
    return int(info["run_time_ns"]), int(info["run_cnt"])


def fill(bpf: Any, slots: int, outstanding: int, age_ms: int) -> None:
    """``outstanding`` slots at random (bucket, way), sent ``age_ms`` ago, timeout 5 s; the
    rest empty."""
    table, ways = bpf["slots"], 2
    chosen: dict[int, list[int]] = {}
    for position in random.sample(range(slots), outstanding):
        chosen.setdefault(position // ways, []).append(position % ways)
    sent = time.monotonic_ns() - age_ms * 10**6  # bpf_ktime_get_ns is CLOCK_MONOTONIC
    for bucket in range(slots // ways):
        leaf = table.Leaf()
        for way in chosen.get(bucket, []):
            slot = leaf.s[way]
            slot.w = ((sent >> 16) & ((1 << 28) - 1)) << W_SENT_SHIFT | W_ATTEMPT | \
                (1024 + bucket % 50000) << 16 | way
            slot.netns, slot.sent, slot.timeout_ms = 4096, sent, 5000
        table[table.Key(bucket)] = leaf


def state(bpf: Any) -> list[int]:
    """outstanding seen, taken, forgotten, races (so far), and the timeouts counted per
    (netns, class) in the per-CPU hash (their sum)."""
    value = bpf["sweep_state"][0]
    counted = sum(sum(v) for v in bpf["sweep_counts"].values())
    return [value.outstanding, value.taken, value.forgotten, value.races, counted]


def cost(make: Callable[[int], Any], sizes: tuple[int, ...], outstanding: int,
         repeat: int = 20) -> None:
    """Per table size: one sweep of an empty table (median of ``repeat``), then with
    ``outstanding`` slots all past their timeout (the first sweep takes them), then again
    (nothing left to take, all waiting for a late answer)."""
    print(f"{'slots':>6} {'outstanding':>11} {'sweep':<22} {'bpf ns/run':>10} "
          f"{'thread us':>9}  outstanding, taken, forgotten, races, counted")
    for size in sizes:
        bpf = make(size)
        fd = load(bpf)
        try:
            for label, k, runs in (("empty", 0, repeat), ("first (takes all)", outstanding, 1),
                                   ("second (none due)", outstanding, 1)):
                if label != "second (none due)":
                    fill(bpf, size, k, age_ms=10_000)
                    bpf["sweep_state"][0] = bpf["sweep_state"].Leaf()
                before, cpu, counted = run_stats(fd), [], state(bpf)
                for _ in range(runs):
                    loops, took = run(fd)
                    cpu.append(took)
                after = run_stats(fd)
                per = (after[0] - before[0]) / max(1, after[1] - before[1])
                print(f"{size:>6} {k:>11} {label:<22} {per:>10.0f} "
                      f"{sorted(cpu)[len(cpu) // 2] / 1e3:>9.1f}  "
                      f"{[b - a for a, b in zip(counted, state(bpf), strict=True)]} "
                      f"(bpf_loop {loops})")
        finally:
            os.close(fd)
            bpf.cleanup()


def exactly_once(variant: Any, workload: Callable[[int], None], ops: int) -> None:
    """The sweep in a loop on one CPU while the workload's answers come on the other, every
    attempt due at once (TIMEOUT_MS 0): each query must be answered once (in time, or late
    after the sweep took it), and each taken one answered late."""
    fd, stop, sweeps = load(variant.bpf), threading.Event(), [0]

    def sweeper() -> None:
        while not stop.is_set():
            run(fd)
            sweeps[0] += 1

    thread = threading.Thread(target=sweeper)
    variant.attach(True)
    thread.start()
    try:
        workload(ops)
    finally:
        stop.set()
        thread.join()
        variant.attach(False)
    run(fd)  # the last sweep: anything left outstanding is taken
    table = variant.bpf["latency"]
    sums = [sum(table[table.Key(i)]) for i in range(64)]
    _, taken, forgotten, races, _ = state(variant.bpf)
    answered, late, evicted = sum(sums[:59]), sums[61], sums[59]
    good = answered + sums[63] == ops and taken == late + evicted \
        and sums[63] == evicted + sums[62] and not sums[60] and not forgotten
    print(f"exactly once: {sweeps[0]} sweeps during {ops} queries: answered {answered} "
          f"(late {late}), sweep took {taken}, expired evicted {evicted}, answer races "
          f"{sums[60]}, sweep races {races}, lost {sums[62]}, unmatched {sums[63]}: "
          f"{'ok' if good else 'NOT exactly once'}")
    os.close(fd)
