"""Give back the memory BPF compilation leaves behind, once the programs are loaded.

bcc compiles each program with clang and LLVM in this process. Afterwards
(measured by bench/bench_agent_memory.py, BENCHMARKS.md "Memory of the whole
agent"): glibc keeps the compiler's freed heap in its arenas, and the pages of
the LLVM and clang libraries that compilation touched stay resident although
nothing runs them until the next load. ``malloc_trim(0)`` hands free heap
pages back (glibc malloc/malloc.c, mtrim); ``madvise(MADV_PAGEOUT)`` over the
compiler libraries' mappings asks the kernel to reclaim their file-backed
pages now (mm/madvise.c, since Linux 5.4); they are read back from the page
cache or disk if a later load needs them. Both are advice: on a C library
without malloc_trim or a kernel without MADV_PAGEOUT nothing happens and
nothing fails.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
MADV_PAGEOUT = 21  # include/uapi/asm-generic/mman-common.h
COMPILER_LIBRARIES = ("libLLVM", "libclang", "libclang-cpp")


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    path: str

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Released:
    trimmed: bool  # malloc_trim ran (and reported memory released)
    paged_out: int  # bytes of compiler library mappings advised out
    mappings: int  # how many mappings
    errors: tuple[str, ...] = ()


def compiler_mappings(maps_text: str) -> list[Mapping]:
    """Mappings of the LLVM/clang libraries in a /proc/PID/maps text.

    A line is ``start-end perms offset dev inode [path]`` (proc(5), /proc/pid/maps);
    one that is not is named in the error, since it means the file is not a maps file.
    """
    found = []
    for line in maps_text.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6:
            continue
        name = Path(fields[5].strip()).name
        if not name.startswith(COMPILER_LIBRARIES):
            continue
        try:
            start, end = (int(part, 16) for part in fields[0].split("-", 1))
        except ValueError:
            raise ValueError(f"not a /proc/PID/maps line: {line!r}") from None
        found.append(Mapping(start, end, fields[5].strip()))
    return found


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def malloc_trim() -> bool:
    """glibc's malloc_trim(0): free heap pages back to the kernel; False where absent."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    return bool(trim(0)) if trim is not None else False


def page_out(mappings: list[Mapping]) -> tuple[int, tuple[str, ...]]:
    """madvise(MADV_PAGEOUT) each mapping; (bytes advised, one error per refused mapping)."""
    libc = _libc()
    if libc is None:
        return 0, ("no C library to call madvise",)
    madvise = libc.madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    done, errors = 0, []
    for mapping in mappings:
        if madvise(mapping.start, mapping.length, MADV_PAGEOUT) == 0:
            done += mapping.length
        else:
            errors.append(f"madvise {mapping.path} {mapping.start:#x}: errno "
                          f"{ctypes.get_errno()}")
    return done, tuple(errors)


def release_compiler_memory(proc_root: str) -> Released:
    """malloc_trim, then page out the compiler libraries of this process (proc_root/self)."""
    trimmed = malloc_trim()
    try:
        mappings = compiler_mappings(Path(proc_root, "self", "maps").read_text())
    except (OSError, ValueError) as exc:
        return Released(trimmed, 0, 0, (f"cannot list this process's mappings: {exc}",))
    done, errors = page_out(mappings)
    if errors:
        log.debug("page-out of the compiler libraries partly refused: %s", "; ".join(errors))
    return Released(trimmed, done, len(mappings), errors)
