"""The drop program as a BTF raw tracepoint (tp_btf), loaded through bpf(2) from bcc's bytecode.

Why: on skb:kfree_skb (one invocation per dropped packet) a classic tracepoint program
reads the namespace key skb->dev->nd_net->ns.ns_id with three bpf_probe_read_kernel calls,
and the kernel fills a trace record first. A tp_btf program (BPF_PROG_TYPE_TRACING,
expected_attach_type BPF_TRACE_RAW_TP, attach_btf_id the typedef btf_trace_<event>) gets the
tracepoint's arguments typed, so that chain is three plain loads the verifier checks against
BTF (BPF_PROBE_MEM, an exception table in the JIT: kernel/bpf/verifier.c) and no record is
filled: 62 → 43 ns per drop (BENCHMARKS.md, "The drop program's floor"). It needs no
trampoline, so kernels that refuse fentry (bpf/fentry.py) take it.

bcc has no tp_btf section and no way to load a program with an attach_btf_id, so the
object is compiled by bcc as usual (its maps created, their fds relocated into the
bytecode) and the entry's bytecode (``dump_func``) is loaded here with BPF_PROG_LOAD and
attached with BPF_RAW_TRACEPOINT_OPEN. ``TpBtfObject`` keeps the bcc object alive (its
maps) and looks like it to the rest of the agent: ``tracepoint_fds``, ``funcs``,
``attach_tracepoint`` / ``detach_tracepoint`` (benchmarks detach between rounds), and
``cleanup`` closes the link and program fds before bcc's own.

``plan`` says whether a composite can be one: every tracepoint of it in ``EVENTS`` and its
prototype in this kernel's BTF the one the entry's argument copy expects (bpf/compose.py
renders that copy, so the member handlers keep their code).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass, replace
from typing import Any

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.programs import ProbeSpec

# include/uapi/linux/bpf.h
BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN = 5, 17
BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP = 26, 23
SYS_BPF_X86_64 = 321
_ATTR_SIZE = 128
_LOG_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class TpBtfEvent:
    """A tracepoint the composite can take as tp_btf: its BTF typedef, the prototype
    (parameter types after ``void *__data``) the entry expects, and how each tracepoint
    field of the classic record is had from ``u64 *ctx`` (TP_fast_assign in the kernel)."""

    typedef: str
    params: tuple[str, ...]
    optional: tuple[str, ...]  # trailing parameters newer kernels add
    fields: tuple[tuple[str, str], ...]


# include/trace/events/skb.h: TP_PROTO(skb, location, reason[, rx_sk since 6.11]);
# protocol = ntohs(skb->protocol)
EVENTS = {
    ("skb", "kfree_skb"): TpBtfEvent(
        "btf_trace_kfree_skb",
        ("struct sk_buff *", "void *", "enum skb_drop_reason"), ("struct sock *",),
        (("skbaddr", "ctx[0]"), ("location", "ctx[1]"), ("reason", "(u32)ctx[2]"),
         ("rx_sk", "ctx[3]"),
         ("protocol", "bpf_ntohs(*(u16 *)(ctx[0] + OFF_SKB_PROTOCOL))"))),
}


def applies(spec: ProbeSpec) -> bool:
    """Whether ``spec`` (a composite) is one ``plan`` decides for: every tracepoint of it
    has a tp_btf entry, and its text gets BTF offsets (netns.h)."""
    return bool(spec.attach) and spec.needs_btf and all(
        (a.category, a.event) in EVENTS for a in spec.attach)


def plan(spec: ProbeSpec, btf: Btf) -> tuple[ProbeSpec | None, str]:
    """(``spec`` with each attach's BTF id, '') or (None, why it stays a classic
    tracepoint)."""
    if spec.finish is not None and not spec.attach:
        return None, "no tracepoint"
    attaches = []
    for a in spec.attach:
        event = EVENTS.get((a.category, a.event))
        if event is None:
            return None, f"{a.category}:{a.event} has no tp_btf entry here"
        params = btf.typedef_params(event.typedef)
        if params is None:
            return None, f"the kernel's BTF has no {event.typedef}"
        got = params[1:]  # params[0]: the tracepoint's void *__data
        if got[:len(event.params)] != event.params or \
                got[len(event.params):] != event.optional[:len(got) - len(event.params)]:
            return None, f"{a.category}:{a.event}'s prototype here is ({', '.join(got)})"
        attaches.append(replace(a, btf_id=btf.typedef_id(event.typedef) or 0))
    return replace(spec, attach=tuple(attaches)), ""


def field_sources(category: str, event: str, fields: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field, C expression over ``ctx``) for each record field the struct has."""
    sources = dict(EVENTS[(category, event)].fields)
    return [(f, sources[f]) for f in fields if f in sources]


def _bpf(command: int, attr: bytes) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    fd = int(libc.syscall(SYS_BPF_X86_64, command, buffer, len(attr)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{errno.errorcode.get(err, err)}: {os.strerror(err)}")
    return fd


def load(code: bytes, name: bytes, btf_id: int) -> int:
    """BPF_PROG_LOAD of ``code`` as tp_btf on the typedef ``btf_id``; the program fd, or
    OSError with the verifier's last words."""
    if os.uname().machine != "x86_64":
        raise OSError(errno.ENOSYS, f"tp_btf loading is implemented for x86_64 only "
                      f"(this is {os.uname().machine})")
    insns = ctypes.create_string_buffer(code, len(code))
    licence, log = ctypes.create_string_buffer(b"GPL"), ctypes.create_string_buffer(_LOG_SIZE)
    attr = bytearray(_ATTR_SIZE)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_TRACING, len(code) // 8,
                     ctypes.addressof(insns), ctypes.addressof(licence), 1, _LOG_SIZE,
                     ctypes.addressof(log))
    struct.pack_into("<16s", attr, 48, name[:15])  # prog_name
    struct.pack_into("<I", attr, 68, BPF_TRACE_RAW_TP)  # expected_attach_type
    struct.pack_into("<I", attr, 108, btf_id)  # attach_btf_id
    try:
        return _bpf(BPF_PROG_LOAD, bytes(attr))
    except OSError as exc:
        tail = log.value.decode(errors="replace").strip().splitlines()[-3:]
        raise OSError(exc.errno, f"tp_btf load refused ({exc.strerror}): "
                      f"{' / '.join(tail)}") from None


def attach(prog_fd: int) -> int:
    """BPF_RAW_TRACEPOINT_OPEN of a loaded tp_btf program (the tracepoint is its
    attach_btf_id's): the link fd; closing it detaches."""
    return _bpf(BPF_RAW_TRACEPOINT_OPEN, struct.pack("<QI4x", 0, prog_fd))


class _Function:
    """What bcc's ``funcs`` values offer that the agent reads (name, fd)."""

    def __init__(self, name: bytes, fd: int) -> None:
        self.name, self.fd = name, fd


class TpBtfObject:
    """A compiled bcc object whose tracepoint entries are tp_btf programs (module docstring).

    ``entries``: tracepoint ("skb:kfree_skb") → (function, BTF typedef id).
    """

    def __init__(self, bpf: Any, entries: dict[bytes, tuple[bytes, int]]) -> None:
        self._bpf = bpf  # keeps the maps the bytecode refers to open
        self._entries = entries
        self._progs: dict[bytes, int] = {}
        self._links: dict[bytes, int] = {}
        try:
            for tp, (function, btf_id) in entries.items():
                self._progs[tp] = load(bpf.dump_func(function), function, btf_id)
        except BaseException:
            self._close()
            raise

    def attach_tracepoint(self, tp: bytes = b"", fn_name: bytes = b"") -> None:
        if tp not in self._progs:
            self._bpf.attach_tracepoint(tp=tp, fn_name=fn_name)
        elif tp not in self._links:
            self._links[tp] = attach(self._progs[tp])

    def detach_tracepoint(self, tp: bytes) -> None:
        if tp in self._links:
            os.close(self._links.pop(tp))
        elif tp not in self._progs:
            self._bpf.detach_tracepoint(tp)

    @property
    def tracepoint_fds(self) -> dict[bytes, int]:
        return {**self._bpf.tracepoint_fds, **self._links}

    @property
    def funcs(self) -> dict[bytes, Any]:
        return {**self._bpf.funcs, **{self._entries[tp][0]: _Function(self._entries[tp][0], fd)
                                      for tp, fd in self._progs.items()}}

    def tp_btf_fds(self) -> dict[bytes, int]:
        """tracepoint → the tp_btf program's fd (tests, bench)."""
        return dict(self._progs)

    def __getitem__(self, name: bytes) -> Any:
        return self._bpf[name]

    def __getattr__(self, name: str) -> Any:  # dump_func, load_func, perf_buffer_poll, ...
        return getattr(self._bpf, name)

    def _close(self) -> None:
        for fd in [*self._links.values(), *self._progs.values()]:
            os.close(fd)
        self._links.clear()
        self._progs.clear()

    def cleanup(self) -> None:
        self._close()
        self._bpf.cleanup()
