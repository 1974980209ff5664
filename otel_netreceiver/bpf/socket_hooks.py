"""Programs at the node's sockets: BPF_PROG_TYPE_CGROUP_SKB on the cgroup v2 root.

Socket-hook probes run there: once at the sending socket and once at the receiving one,
never for a forwarded packet; several of them are one program per direction
(bpf/compose_hooks.py, include/sockhook.h). They attach through bpf_link
(BPF_LINK_CREATE), which the kernel detaches when the link's file is closed, so a killed
agent leaves nothing attached (a program attached with BPF_PROG_ATTACH would stay until
someone detached it). Links on a cgroup always let other programs run too
(kernel/bpf/cgroup.c, cgroup_bpf_link_attach attaches with BPF_F_ALLOW_MULTI), so the
agent never displaces another tool's programs.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from dataclasses import dataclass
from typing import Any

CGROUP_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")  # hybrid v1+v2, then pure v2
# include/uapi/linux/bpf.h
BPF_LINK_CREATE = 28
BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS = 0, 1
# the bpf syscall's number: arch/x86/entry/syscalls/syscall_64.tbl and
# include/uapi/asm-generic/unistd.h (arm64, e.g. Graviton nodes)
SYS_BPF = {"x86_64": 321, "aarch64": 280}


def cgroup_root(candidates: tuple[str, ...] = CGROUP_ROOTS) -> str | None:
    """The cgroup v2 hierarchy's root: where the programs see every socket of the node."""
    for path in candidates:
        if os.path.exists(os.path.join(path, "cgroup.controllers")):
            return path
    return None


def link_create(prog_fd: int, target_fd: int, attach_type: int) -> int:
    """bpf(BPF_LINK_CREATE): union bpf_attr link_create {prog_fd, target_fd, attach_type,
    flags} (include/uapi/linux/bpf.h); the link fd, or OSError with the kernel's errno."""
    machine = platform.machine()
    if machine not in SYS_BPF:
        raise OSError(f"BPF_LINK_CREATE: no bpf syscall number known for {machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("<IIII", prog_fd, target_fd, attach_type, 0),
                                       64)
    fd = libc.syscall(SYS_BPF[machine], BPF_LINK_CREATE, attr, 64)
    if fd < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"BPF_LINK_CREATE: {os.strerror(errno)}")
    return int(fd)


class HookMember:
    """One probe's view of an object it shares with other socket-hook probes: its own reader
    state (``state``), everything else the object's (tables, funcs). ``owner`` is the object
    the collector cleans up, once."""

    def __init__(self, owner: SocketHookObject) -> None:
        self.owner = owner
        self.state: Any = None

    def __getitem__(self, name: bytes) -> Any:
        return self.owner[name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.owner, name)


class SocketHookObject:
    """A loaded bcc object plus the cgroup links of its ``<prefix>_egress`` and
    ``<prefix>_ingress`` programs; cleanup() detaches both.

    Acts like the bcc object for the collector (tables by name, funcs, cleanup), keeps the
    reader's state between cycles (``state``), and socket_hooks(on) for
    bench/bench_workload.py's rounds with and without.
    """

    def __init__(self, bpf: Any, root: str, prefix: str,
                 tail_calls: tuple[tuple[str, str], ...] = ()) -> None:
        import ctypes

        from bcc import BPF

        self._bpf, self._root = bpf, root
        for table, program in tail_calls:  # before attaching: no packet finds a slot empty
            fd = bpf.load_func(program.encode(), BPF.CGROUP_SKB).fd
            bpf[table.encode()][ctypes.c_int(0)] = ctypes.c_int(fd)
        self._programs = [(bpf.load_func(f"{prefix}_{side}".encode(), BPF.CGROUP_SKB).fd, kind)
                          for side, kind in (("egress", BPF_CGROUP_INET_EGRESS),
                                             ("ingress", BPF_CGROUP_INET_INGRESS))]
        self._links: list[int] = []
        self.state: Any = None  # the probe reader's
        self.attach()

    def attach(self) -> None:
        if self._links:
            return
        target = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for prog_fd, kind in self._programs:
                self._links.append(link_create(prog_fd, target, kind))
        except OSError:
            self.detach()
            raise
        finally:
            os.close(target)

    def detach(self) -> None:
        while self._links:
            os.close(self._links.pop())

    def socket_hooks(self, on: bool) -> None:
        """Attach or detach the cgroup programs (benchmark rounds with and without)."""
        self.attach() if on else self.detach()

    def member(self) -> HookMember:
        """A view for one probe of a composite: the readers keep their state on the object
        they are given, and two probes' readers must not share one attribute."""
        return HookMember(self)

    def __getitem__(self, name: bytes) -> Any:
        return self._bpf[name]

    def __getattr__(self, name: str) -> Any:  # funcs, tracepoint_fds, ...
        return getattr(self._bpf, name)

    def cleanup(self) -> None:
        self.detach()
        self._bpf.cleanup()


@dataclass(frozen=True, slots=True)
class SocketAttacher:
    """A ProbeSpec.finish that attaches ``<prefix>_egress`` and ``<prefix>_ingress`` to the
    cgroup v2 root; ``handler`` is the probe's C handler (include/sockhook.h), which the
    composite's entries call when several socket-hook probes are one object.
    ``tail_calls``: (BPF_PROG_ARRAY, program) pairs, the program put in slot 0 of the array
    before the programs are attached (in the composite the entry makes the call, after
    every handler, when the member set skb->cb[4]: bpf/compose_hooks.py)."""

    prefix: str
    handler: str = ""
    tail_calls: tuple[tuple[str, str], ...] = ()

    def __call__(self, bpf: Any) -> SocketHookObject:
        root = cgroup_root()
        if root is None:
            raise RuntimeError("no cgroup v2 hierarchy mounted (looked at "
                               f"{', '.join(CGROUP_ROOTS)}): the socket hooks need one")
        return SocketHookObject(bpf, root, self.prefix, self.tail_calls)


def attacher(prefix: str, handler: str = "",
             tail_calls: tuple[tuple[str, str], ...] = ()) -> SocketAttacher:
    """A ProbeSpec.finish for a socket-hook probe: its programs' prefix and C handler."""
    return SocketAttacher(prefix, handler, tail_calls)
