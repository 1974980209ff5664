"""Whether this kernel lets a BPF trampoline (fentry/fexit) attach to a kernel function.

Function hooks are what virtcmdlatency needs: virtio-net control commands have no
tracepoint, and this kind of kernel has no kprobes. fentry needs BTF, the target
function in BTF, JIT and ftrace direct calls, and the kernel may still refuse it
(a security policy, a function marked notrace). The only honest test is to try: a
two-instruction BPF_PROG_TYPE_TRACING program is loaded against the function's BTF
id through the bpf(2) syscall (no compiler involved) and closed again; the errno
is the precise reason.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from otel_netreceiver.bpf.btf import Btf

# include/uapi/linux/bpf.h
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_TRACING = 26
BPF_TRACE_FENTRY = 24
SYS_BPF_X86_64 = 321
# r0 = 0; exit  (BPF_ALU64|BPF_MOV|BPF_K, BPF_JMP|BPF_EXIT)
_RETURN_ZERO = bytes([0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
_ATTR_SIZE = 128


def pick_function(btf: Btf, candidates: tuple[str, ...]) -> tuple[str, int] | None:
    """The first of ``candidates`` this kernel's BTF has, with its BTF id."""
    for name in candidates:
        type_id = btf.function_id(name)
        if type_id is not None:
            return name, type_id
    return None


def prog_load_attr(insns_addr: int, license_addr: int, attach_btf_id: int) -> bytes:
    """union bpf_attr for BPF_PROG_LOAD of an fentry program (field offsets from uapi bpf.h)."""
    attr = bytearray(_ATTR_SIZE)
    struct.pack_into("<IIQQ", attr, 0, BPF_PROG_TYPE_TRACING, len(_RETURN_ZERO) // 8,
                     insns_addr, license_addr)
    struct.pack_into("<16s", attr, 48, b"onr_fentry_try")
    struct.pack_into("<I", attr, 68, BPF_TRACE_FENTRY)   # expected_attach_type
    struct.pack_into("<I", attr, 108, attach_btf_id)     # attach_btf_id
    return bytes(attr)


def try_fentry(function: str, attach_btf_id: int) -> str:
    """'' when the kernel accepts an fentry program on ``function``, else why not."""
    if os.uname().machine != "x86_64":
        return f"fentry check is implemented for x86_64 only (this is {os.uname().machine})"
    libc = ctypes.CDLL(None, use_errno=True)
    insns = ctypes.create_string_buffer(_RETURN_ZERO, len(_RETURN_ZERO))
    licence = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(
        prog_load_attr(ctypes.addressof(insns), ctypes.addressof(licence), attach_btf_id),
        _ATTR_SIZE)
    fd = libc.syscall(SYS_BPF_X86_64, BPF_PROG_LOAD, attr, _ATTR_SIZE)
    if fd >= 0:
        os.close(fd)
        return ""
    err = ctypes.get_errno()
    return (f"the kernel refused an fentry program on {function} "
            f"(bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_TRACING): {errno.errorcode.get(err, err)}: "
            f"{os.strerror(err)}): BPF trampolines are not usable here")


def function_hook_reason(btf: Btf, candidates: tuple[str, ...]) -> tuple[str, str]:
    """(chosen function, '' or why no fentry hook can be attached to it)."""
    found = pick_function(btf, candidates)
    if found is None:
        return "", f"none of {', '.join(candidates)} is in this kernel's BTF (not built in?)"
    return found[0], try_fentry(*found)
