"""Per-pod read/write syscalls and bytes as true cumulative counters.

``/proc/<pid>/io`` counts per process (fs/proc/base.c, do_io_accounting), so the
sum over a pod's live processes drops whenever one exits: exported as a counter
it would read as a reset and fake a spike in rate(). Instead the pod's total
grows by each live process's increase since the last cycle; what an exited
process did up to the last cycle that saw it stays in the total. A process born
and gone between two cycles is not seen; a pid whose counters went down is a
new process (pid reuse) and counts from zero.
"""

from __future__ import annotations

from pathlib import Path

FIELDS = ("syscr", "syscw", "rchar", "wchar")


def parse_proc_io(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in FIELDS and value.strip().isdigit():
            values[name] = int(value)
    return values


class IoAccounting:
    def __init__(self, proc_root: str) -> None:
        self._proc_root = proc_root
        self._last: dict[int, dict[str, int]] = {}  # pid → last counters
        self._totals: dict[int, dict[str, int]] = {}  # netns inode → cumulative totals
        self._next_last: dict[int, dict[str, int]] = {}
        self._next_totals: dict[int, dict[str, int]] = {}

    def begin_cycle(self) -> None:
        self._next_last, self._next_totals = {}, {}

    def end_cycle(self) -> None:
        """Forget processes and namespaces not seen this cycle."""
        self._last, self._totals = self._next_last, self._next_totals

    def update(self, inode: int, pids: tuple[int, ...]) -> dict[str, int]:
        totals = dict(self._totals.get(inode) or dict.fromkeys(FIELDS, 0))
        for pid in pids:
            try:
                now = parse_proc_io(Path(self._proc_root, str(pid), "io").read_text())
            except OSError:
                continue  # exited or not readable (kernel threads)
            before = self._last.get(pid, {})
            for name in FIELDS:
                value = now.get(name, 0)
                previous = before.get(name, value if pid in self._last else 0)
                totals[name] += value - previous if value >= previous else value
            self._next_last[pid] = now
        self._next_totals[inode] = totals
        return totals
