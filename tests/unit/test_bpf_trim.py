"""Giving back compile-time memory: the maps parser, and page-out on a real file mapping."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import pytest

from otel_netreceiver.bpf.trim import (
    Mapping,
    compiler_mappings,
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
                               "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1")
    assert found[1].length == 0x1E00000


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
