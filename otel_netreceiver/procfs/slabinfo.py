"""``/proc/slabinfo`` (mm/slab_common.c, slabinfo_show): caches by name, version 2.1 columns.

Readable by root only (mode 0400). With SLUB cache merging a cache may be
merged into another and not listed: callers treat a missing name as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_netreceiver.procfs.errors import ParseError


@dataclass(frozen=True, slots=True)
class SlabCache:
    name: str
    active_objects: int
    total_objects: int
    object_size: int


def parse_slabinfo(text: str, source: str = "slabinfo") -> dict[str, SlabCache]:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("slabinfo - version: 2"):
        raise ParseError(source, 1, "expected 'slabinfo - version: 2.x'")
    caches = {}
    for lineno, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if len(fields) < 4:
            raise ParseError(source, lineno, f"expected 'name active total size ...', got {line!r}")
        try:
            caches[fields[0]] = SlabCache(fields[0], int(fields[1]), int(fields[2]), int(fields[3]))
        except ValueError as exc:
            raise ParseError(source, lineno, f"not an integer: {exc}") from exc
    return caches
