"""Kernel addresses → function names from /proc/kallsyms (drop locations, event stacks).

Without CAP_SYSLOG (or with kptr_restrict) every address reads as 0: then
locations cannot be named and are reported as "unknown", counted, not hidden.

The table is compact because it lives as long as the agent: a 6.18 kernel
lists over a hundred thousand symbols, and one Python str and int per symbol
(plus a list slot each) cost tens of MB, where one sorted ``array('Q')`` of
addresses and one bytes blob of names with end offsets cost a few. Names are
decoded only when a lookup asks. One table serves the counting programs and the
event records alike (``KernelSymbols``), read when a probe that needs it loads.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections.abc import Iterable
from pathlib import Path

from otel_netreceiver.bpf.trim import malloc_trim

_TEXT_TYPES = (b"t", b"T", b"w", b"W")


class Kallsyms:
    """Text symbols sorted by address; one name per address (the last in name order)."""

    def __init__(self, addresses: array, names: bytes, ends: array) -> None:
        if len(addresses) != len(ends) or (len(ends) and ends[-1] != len(names)):
            raise ValueError(f"kallsyms table of {len(addresses)} addresses, {len(ends)} name "
                             f"ends and {len(names)} name bytes does not line up")
        self._addresses, self._names, self._ends = addresses, names, ends

    @classmethod
    def load(cls, proc_root: str = "/proc") -> Kallsyms:
        """The running kernel's table; empty (every name "unknown") if kallsyms is unreadable."""
        try:
            with Path(proc_root, "kallsyms").open("rb") as lines:
                return parse_kallsyms_lines(lines)
        except OSError:
            return parse_kallsyms_lines(())

    @property
    def usable(self) -> bool:
        return bool(self._addresses)

    def __len__(self) -> int:
        return len(self._addresses)

    def name(self, address: int) -> str:
        """The function containing ``address`` (the nearest symbol at or below it)."""
        if not address:
            return "unknown"
        index = bisect.bisect_right(self._addresses, address) - 1
        if index < 0:
            return "unknown"
        start = self._ends[index - 1] if index else 0
        return self._names[start:self._ends[index]].decode("ascii", "replace")

    def nbytes(self) -> int:
        """Bytes the table holds (the arrays and the names), for the memory benchmark."""
        return (len(self._addresses) * self._addresses.itemsize + len(self._names)
                + len(self._ends) * self._ends.itemsize)


def parse_kallsyms(text: str) -> Kallsyms:
    """Text symbols (``address type name [module]``) of a kallsyms text, sorted by address."""
    return parse_kallsyms_lines(line.encode("utf-8", "replace") for line in text.splitlines())


def parse_kallsyms_lines(lines: Iterable[bytes]) -> Kallsyms:
    """The table from kallsyms lines, read one at a time so the file is never held whole.

    A line that is not in the ``address type name [module]`` form is skipped rather
    than failing the whole table: only a few drop locations would lose their names
    (kernel/kallsyms.c s_show).
    """
    addresses, blob, ends = array("Q"), bytearray(), array("I")
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[1] not in _TEXT_TYPES:
            continue
        try:
            address = int(fields[0], 16)
        except ValueError:
            continue
        if 0 < address < 1 << 64:
            addresses.append(address)
            blob += fields[2]
            ends.append(len(blob))
    return _sorted_table(addresses, bytes(blob), ends)


def _sorted_table(addresses: array, blob: bytes, ends: array) -> Kallsyms:
    """Sort by address (modules may follow the core kernel out of order), one name each.

    Aliases at one address keep the last name in name order, as a sort of
    (address, name) pairs would.
    """
    count = len(addresses)
    in_order = all(addresses[i] <= addresses[i + 1] for i in range(count - 1))
    order = range(count) if in_order else sorted(range(count), key=addresses.__getitem__)
    out_addresses, out_blob, out_ends = array("Q"), bytearray(), array("I")
    pending: tuple[int, bytes] | None = None
    for i in order:
        symbol = (addresses[i], blob[ends[i - 1] if i else 0:ends[i]])
        if pending is not None and pending[0] == symbol[0]:
            pending = max(pending, symbol)
            continue
        if pending is not None:
            out_addresses.append(pending[0])
            out_blob += pending[1]
            out_ends.append(len(out_blob))
        pending = symbol
    if pending is not None:
        out_addresses.append(pending[0])
        out_blob += pending[1]
        out_ends.append(len(out_blob))
    return Kallsyms(out_addresses, bytes(out_blob), out_ends)


class KernelSymbols:
    """The agent's one kallsyms table, read once, under a lock, by the first ``table()``.

    Counting (collectors/ebpf.py) and event records (events/source.py) name drop
    locations from different threads; both call ``table()`` when a probe that names
    addresses loads, so the read (~0.2 s of CPU) never falls on a node-API question.
    """

    def __init__(self, proc_root: str) -> None:
        self._proc_root = proc_root
        self._lock = threading.Lock()
        self._table: Kallsyms | None = None

    def table(self) -> Kallsyms:
        with self._lock:
            if self._table is None:
                self._table = Kallsyms.load(self._proc_root)
                # parsing frees ~20 MB of temporaries that glibc keeps (bpf/trim.py)
                malloc_trim()
            return self._table

    def name(self, address: int) -> str:
        return self.table().name(address)
