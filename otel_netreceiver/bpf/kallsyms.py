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
        try:
            text = Path(proc_root, "kallsyms").read_text()
        except OSError:
            text = ""
        return parse_kallsyms(text)

    @property
    def usable(self) -> bool:
        return bool(self._addresses)

    def name(self, address: int) -> str:
        index = bisect.bisect_right(self._addresses, address) - 1
        return self._names[index] if index >= 0 and address else "unknown"


def parse_kallsyms(text: str) -> Kallsyms:
    """Text symbols (``address type name [module]``), sorted by address.

    A line that is not in that form is skipped rather than failing the whole table:
    only a few drop locations would lose their names (kernel/kallsyms.c s_show).
    """
    pairs = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[1] not in ("t", "T", "w", "W"):
            continue
        try:
            address = int(fields[0], 16)
        except ValueError:
            continue
        if address:
            pairs.append((address, fields[2]))
    pairs.sort()
    return Kallsyms([a for a, _ in pairs], [n for _, n in pairs])
