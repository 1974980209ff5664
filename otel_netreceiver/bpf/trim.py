"""Give back the memory BPF compilation leaves behind, once the programs are loaded.

bcc compiles each program with clang and LLVM in this process. Afterwards
(measured by bench/bench_agent_memory.py, BENCHMARKS.md "Memory of the whole
agent"): glibc keeps the compiler's freed heap in its arenas, and the pages of
the LLVM and clang libraries that compilation touched stay resident although
nothing runs them until the next load. ``malloc_trim(0)`` hands free heap
pages back (glibc malloc/malloc.c, mtrim); ``madvise(MADV_PAGEOUT)`` over the
compiler libraries' mappings asks the kernel to reclaim their file-backed
pages now (mm/madvise.c, since Linux 5.4); they are read back from the page
cache or disk if a later load needs them. Page-out skips a page another
process maps too (another bcc process on the node, an operator's ``watch``), so
the mappings that hold only clean file pages (read-only, nothing private,
dirty or swapped: the libraries' text and constants, not their relocated data)
are also dropped from this process with ``MADV_DONTNEED``, which for such
pages only unmaps them: the next access reads them back from the file
(madvise(2)). All of it is advice: on a C library without malloc_trim or a
kernel without MADV_PAGEOUT nothing happens and nothing fails.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
MADV_DONTNEED, MADV_PAGEOUT = 4, 21  # include/uapi/asm-generic/mman-common.h
# smaps fields that must all be 0 for a mapping to be dropped with MADV_DONTNEED
_NOT_CLEAN = ("Private_Dirty", "Shared_Dirty", "Anonymous", "Swap")
COMPILER_LIBRARIES = ("libLLVM", "libclang", "libclang-cpp")


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    path: str
    perms: str = "r--p"
    not_clean_kb: int | None = None  # dirty, anonymous or swapped kB; None: not known

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def clean(self) -> bool:
        """Only clean file pages, never writable: safe to unmap (MADV_DONTNEED)."""
        return "w" not in self.perms and self.not_clean_kb == 0


@dataclass(frozen=True, slots=True)
class Released:
    trimmed: bool  # malloc_trim ran (and reported memory released)
    paged_out: int  # bytes of compiler library mappings advised out
    mappings: int  # how many mappings
    errors: tuple[str, ...] = ()
    dropped: int = 0  # bytes of clean read-only mappings unmapped (MADV_DONTNEED)


def compiler_mappings(smaps_text: str) -> list[Mapping]:
    """Mappings of the LLVM/clang libraries in a /proc/PID/smaps (or maps) text.

    A mapping starts with ``start-end perms offset dev inode [path]`` (proc(5),
    /proc/pid/smaps); its ``Key: value kB`` lines follow. From a maps text, whether
    a mapping is clean is not known (``not_clean_kb`` None). A compiler line that is
    not a mapping header is named in the error: the text is not what it claims.
    """
    found: list[Mapping] = []
    current: Mapping | None = None
    for line in smaps_text.splitlines():
        fields = line.split(None, 5)
        if len(fields) >= 2 and fields[0].endswith(":"):  # an attribute of the mapping above
            if current is not None and fields[0][:-1] in _NOT_CLEAN:
                current = _add_not_clean(current, int(fields[1]))
                found[-1] = current
            continue
        current = None
        if len(fields) < 6 or not Path(fields[5].strip()).name.startswith(COMPILER_LIBRARIES):
            continue
        try:
            start, end = (int(part, 16) for part in fields[0].split("-", 1))
        except ValueError:
            raise ValueError(f"not a /proc/PID/maps line: {line!r}") from None
        current = Mapping(start, end, fields[5].strip(), fields[1])
        found.append(current)
    return found


def _add_not_clean(mapping: Mapping, kb: int) -> Mapping:
    return Mapping(mapping.start, mapping.end, mapping.path, mapping.perms,
                   (mapping.not_clean_kb or 0) + kb)


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


def advise(mappings: list[Mapping], advice: int) -> tuple[int, tuple[str, ...]]:
    """madvise each mapping; (bytes advised, one error per refused mapping)."""
    libc = _libc()
    if libc is None:
        return 0, ("no C library to call madvise",)
    madvise = libc.madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    done, errors = 0, []
    for mapping in mappings:
        if madvise(mapping.start, mapping.length, advice) == 0:
            done += mapping.length
        else:
            errors.append(f"madvise({advice}) {mapping.path} {mapping.start:#x}: errno "
                          f"{ctypes.get_errno()}")
    return done, tuple(errors)


def page_out(mappings: list[Mapping]) -> tuple[int, tuple[str, ...]]:
    """MADV_PAGEOUT: reclaim the pages of these mappings that only this process maps."""
    return advise(mappings, MADV_PAGEOUT)


def drop_clean(mappings: list[Mapping]) -> tuple[int, tuple[str, ...]]:
    """MADV_DONTNEED on the clean read-only mappings only (shared pages included)."""
    return advise([m for m in mappings if m.clean], MADV_DONTNEED)


def release_compiler_memory(proc_root: str) -> Released:
    """malloc_trim, then page out and unmap the compiler libraries (proc_root/self/smaps)."""
    trimmed = malloc_trim()
    try:
        mappings = compiler_mappings(Path(proc_root, "self", "smaps").read_text())
    except (OSError, ValueError) as exc:
        return Released(trimmed, 0, 0, (f"cannot list this process's mappings: {exc}",))
    done, errors = page_out(mappings)
    dropped, refused = drop_clean(mappings)
    if errors or refused:
        log.debug("release of the compiler libraries partly refused: %s",
                  "; ".join(errors + refused))
    return Released(trimmed, done, len(mappings), errors + refused, dropped)
