"""Kernel addresses → function names from /proc/kallsyms (drop locations of packetloss).

Without CAP_SYSLOG (or with kptr_restrict) every address reads as 0: then
locations cannot be named and are reported as "unknown", counted, not hidden.
"""

from __future__ import annotations

import bisect
from pathlib import Path


class Kallsyms:
    def __init__(self, addresses: list[int], names: list[str]) -> None:
        self._addresses, self._names = addresses, names

    @classmethod
    def load(cls, proc_root: str = "/proc") -> Kallsyms:
        pairs = []
        try:
            text = Path(proc_root, "kallsyms").read_text()
        except OSError:
            text = ""
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[1] in "tTwW":
                address = int(fields[0], 16)
                if address:
                    pairs.append((address, fields[2]))
        pairs.sort()
        return cls([a for a, _ in pairs], [n for _, n in pairs])

    @property
    def usable(self) -> bool:
        return bool(self._addresses)

    def name(self, address: int) -> str:
        index = bisect.bisect_right(self._addresses, address) - 1
        return self._names[index] if index >= 0 and address else "unknown"
