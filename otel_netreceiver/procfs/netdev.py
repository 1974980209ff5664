"""``/proc/<pid>/net/dev``: the same layout in every network namespace."""

from __future__ import annotations

from dataclasses import dataclass

from otel_netreceiver.procfs.errors import ParseError

# Columns after "iface:" in net-procfs.c: 8 receive fields, then 8 transmit fields.
_RX = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
_TX = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")


@dataclass(frozen=True, slots=True)
class NetDevCounters:
    interface: str
    rx: dict[str, int]
    tx: dict[str, int]


HEADER_LINES = 2  # two lines of column titles before the first interface


def parse_net_dev_line(line: str, source: str = "net/dev", lineno: int = 3) -> NetDevCounters:
    """One interface's line; separate so a caller can parse only the lines that changed."""
    name, sep, rest = line.partition(":")
    fields = rest.split()
    if not sep or len(fields) != 16 or not all(f.isdigit() for f in fields):
        raise ParseError(source, lineno, f"expected 'iface: 16 numbers', got {line!r}")
    numbers = [int(f) for f in fields]
    return NetDevCounters(name.strip(), dict(zip(_RX, numbers[:8], strict=True)),
                          dict(zip(_TX, numbers[8:], strict=True)))


def parse_net_dev(text: str, source: str = "net/dev") -> tuple[NetDevCounters, ...]:
    """Parse /proc/net/dev; raises ParseError naming the line for anything malformed."""
    return tuple(parse_net_dev_line(line, source, lineno) for lineno, line
                 in enumerate(text.splitlines()[HEADER_LINES:], start=HEADER_LINES + 1))
