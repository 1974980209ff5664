"""Giving back compile-time memory: the maps parser, and page-out on a real file mapping."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import pytest

from otel_netreceiver.bpf.trim import (
    Mapping,
    compiler_mappings,
    drop_clean,
    malloc_trim,
    page_out,
    release_compiler_memory,
)

MAPS = """\
55d0c0000000-55d0c0100000 r--p 00000000 fe:01 123 /usr/bin/python3.11
7f0000000000-7f0000200000 r--p 00000000 fe:01 456 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
7f0000200000-7f0002000000 r-xp 00200000 fe:01 456 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
7f0003000000-7f0003100000 r-xp 00000000 fe:01 789 /usr/lib/llvm-14/lib/libclang-cpp.so.14
7f0004000000-7f0004100000 r-xp 00000000 fe:01 790 /usr/lib/x86_64-linux-gnu/libbcc.so.0
7f0005000000-7f0005100000 rw-p 00000000 00:00 0
"""


def test_only_the_llvm_and_clang_mappings_are_chosen() -> None:
    found = compiler_mappings(MAPS)
    assert [m.path.rsplit("/", 1)[1] for m in found] == [
        "libLLVM-14.so.1", "libLLVM-14.so.1", "libclang-cpp.so.14"]
    assert found[1] == Mapping(0x7F0000200000, 0x7F0002000000,
                               "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1", "r-xp")
    assert found[1].length == 0x1E00000
    assert not any(m.clean for m in found)  # a maps text cannot say what is clean


SMAPS = """\
7f0000000000-7f0000200000 r-xp 00000000 fe:01 456 /usr/lib/libLLVM-14.so.1
Rss:                2048 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Anonymous:             0 kB
Swap:                  0 kB
VmFlags: rd ex mr mw me
7f0000200000-7f0000300000 r--p 00200000 fe:01 456 /usr/lib/libLLVM-14.so.1
Private_Dirty:       512 kB
Anonymous:           512 kB
Swap:                  0 kB
7f0000300000-7f0000310000 rw-p 00300000 fe:01 456 /usr/lib/libLLVM-14.so.1
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000400000-7f0000410000 r--p 00000000 fe:01 457 /usr/lib/libLLVM-14.so.1
Private_Dirty:         0 kB
Swap:                  8 kB
7f0005000000-7f0005100000 rw-p 00000000 00:00 0
Private_Dirty:       100 kB
"""


def test_only_read_only_mappings_without_dirty_anonymous_or_swapped_pages_are_clean() -> None:
    found = compiler_mappings(SMAPS)
    assert [(m.perms, m.not_clean_kb, m.clean) for m in found] == [
        ("r-xp", 0, True),  # text
        ("r--p", 1024, False),  # relocated data: unmapping would lose the relocations
        ("rw-p", 0, False),  # writable
        ("r--p", 8, False),  # swapped
    ]


def test_a_compiler_line_that_is_not_a_maps_line_is_named() -> None:
    with pytest.raises(ValueError, match="not a /proc/PID/maps line: 'zz-yy"):
        compiler_mappings("zz-yy r-xp 0 fe:01 1 /usr/lib/libLLVM-14.so.1\n")


def test_no_maps_file_under_proc_root_is_reported_not_raised(tmp_path: Path) -> None:
    released = release_compiler_memory(str(tmp_path))
    assert released.paged_out == 0 and released.mappings == 0
    assert "cannot list this process's mappings" in released.errors[0]


def test_malloc_trim_runs_on_glibc() -> None:
    assert isinstance(malloc_trim(), bool)


def _rss_kb(start: int) -> int:
    """Rss of this process's mapping that starts at ``start`` (/proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split(None, 1)[0]
        if "-" in first and not first.endswith(":"):
            inside = int(first.split("-")[0], 16) == start
        elif inside and first == "Rss:":
            return int(line.split()[1])
    raise AssertionError(f"no mapping at {start:#x}")


def test_page_out_reclaims_the_resident_pages_of_a_file_mapping(tmp_path: Path) -> None:
    path = tmp_path / "libLLVM-test.so"
    path.write_bytes(os.urandom(4 << 20))
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mapped:
        assert sum(mapped[i] for i in range(0, len(mapped), mmap.PAGESIZE)) >= 0  # fault in
        found = [m for m in compiler_mappings(Path("/proc/self/maps").read_text())
                 if m.path == str(path)]
        assert len(found) == 1
        before = _rss_kb(found[0].start)
        done, errors = page_out(found)
        after = _rss_kb(found[0].start)
    assert before >= 4096 - 64 and done == 4 << 20 and errors == ()
    assert after < before / 4


def _mapping_of(path: Path) -> Mapping:
    found = [m for m in compiler_mappings(Path("/proc/self/smaps").read_text())
             if m.path == str(path)]
    assert len(found) == 1, found
    return found[0]


def test_drop_clean_unmaps_clean_pages_and_keeps_relocated_ones(tmp_path: Path) -> None:
    import ctypes

    data = os.urandom(1 << 20)
    clean_path, relro_path = tmp_path / "libLLVM-text.so", tmp_path / "libLLVM-relro.so"
    for path in (clean_path, relro_path):  # written back: page cache pages start clean
        with path.open("wb") as f:
            f.write(data)
            os.fsync(f.fileno())
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    with clean_path.open("rb") as cf, relro_path.open("r+b") as rf, \
            mmap.mmap(cf.fileno(), 0, prot=mmap.PROT_READ) as text, \
            mmap.mmap(rf.fileno(), 0, flags=mmap.MAP_PRIVATE) as relro:
        assert text[:] == data
        relro[:4] = b"RELO"  # copy-on-write: a private dirty page, as the loader's relocations
        address = ctypes.addressof(ctypes.c_char.from_buffer(relro))
        assert libc.mprotect(address, len(data), mmap.PROT_READ) == 0  # as RELRO does
        mappings = [_mapping_of(clean_path), _mapping_of(relro_path)]
        assert [m.clean for m in mappings] == [True, False]
        done, errors = drop_clean(mappings)
        assert done == len(data) and errors == ()
        assert _rss_kb(mappings[0].start) == 0
        assert text[:] == data  # read back from the file
        assert relro[:4] == b"RELO" and relro[4:] == data[4:]
        assert libc.mprotect(address, len(data), mmap.PROT_READ | mmap.PROT_WRITE) == 0
