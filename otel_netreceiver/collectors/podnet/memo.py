"""What one namespace's files said last cycle, so that a busy namespace costs little more
than a quiet one.

On a node every pod's counters move every cycle, but only a few lines of each file
move with them: loopback traffic changes the Ip, Icmp and Udp lines of snmp and the
IpExt line of netstat, not the long TcpExt line, and one interface's line of dev.
So each file is compared line by line with its previous read; only changed lines
are parsed, and a value that did not change keeps last cycle's Point object, which
the series store recognises by identity (runtime/store.py, its fast path) without
hashing the series key. A parse is shared by every probe that needs the file in a
cycle (tcpsummary reads snmp's Tcp line and sockstat, which their own probes parse).

State lives per namespace inode and is dropped with the namespace or when its
attributes change (pod metadata arrived): points carry the attributes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

from otel_netreceiver.model import Attributes, MetricDef, Point
from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.procfs.netdev import HEADER_LINES, NetDevCounters, parse_net_dev_line
from otel_netreceiver.procfs.snmp import check_pairs, parse_snmp_pair

T = TypeVar("T")
Field = tuple[str, str, MetricDef]  # (protocol, counter name, metric) of the catalogue


def _renew(points: list[Point], position: int, definition: MetricDef,
           attributes: Attributes, value: int) -> None:
    """A new Point only where the value moved: the unchanged keep their identity."""
    if points[position].value != value:
        points[position] = Point(definition, attributes, value)


class MibMemo:
    """One snmp or netstat file: header/values pairs, re-read token by token where they moved.

    ``points`` follows the catalogue's field order (the export order); per values line,
    ``slots`` maps a token's position to the point it feeds. A changed line is compared
    token by token with last cycle's line and only the tokens that differ are converted
    (the others were validated when first read). A header that changed (another kernel
    after a live migration, say) or a duplicated protocol rebuilds everything; anything
    malformed is re-parsed in full for its error message. Only lines and interned names
    are kept, not parsed tables: hundreds of namespaces each hold one.
    """

    __slots__ = ("heads", "keys", "points", "slots", "text", "values")

    def __init__(self) -> None:
        self.text: str | None = None
        self.heads: list[str] | None = None
        self.values: list[str] = []
        self.keys: dict[str, tuple[int, list[str]]] = {}  # protocol → (line, counter names)
        self.slots: list[dict[int, tuple[int, MetricDef]]] = []  # token → (position, metric)
        self.points: list[Point] = []

    def update(self, text: str, source: str, fields: Iterable[Field],
               attributes: Attributes) -> list[Point]:
        """This cycle's points (the returned list is reused and changed in place later)."""
        if text == self.text:
            return self.points
        lines = text.splitlines()
        try:
            check_pairs(lines, source)
            heads, values = lines[0::2], lines[1::2]
            if heads == self.heads:
                self._refresh(values, source, attributes)
            else:
                self._rebuild(heads, values, source, fields, attributes)
        except ParseError:
            self.__init__()  # type: ignore[misc]  # half-updated: start over next cycle
            raise
        self.text, self.values = text, values
        return self.points

    def value(self, protocol: str, name: str) -> int | None:
        """One counter of the last read (validated then), e.g. Tcp CurrEstab for tcpsummary."""
        line, names = self.keys.get(protocol, (-1, []))
        if name not in names:
            return None
        return int(self.values[line].partition(":")[2].split()[names.index(name)])

    def _rebuild(self, heads: list[str], values: list[str], source: str,
                 fields: Iterable[Field], attributes: Attributes) -> None:
        tables = dict(parse_snmp_pair(h, v, source, 2 * i + 2)
                      for i, (h, v) in enumerate(zip(heads, values, strict=True)))
        self.keys = {}
        for i, head in enumerate(heads):
            protocol, _, names = head.partition(":")
            self.keys[protocol] = (i, [sys.intern(n) for n in names.split()])
        self.points, self.slots = [], [{} for _ in heads]
        for protocol, name, definition in fields:
            table = tables.get(protocol)
            if table is not None and name in table:
                i, names = self.keys[protocol]
                self.slots[i][names.index(name)] = (len(self.points), definition)
                self.points.append(Point(definition, attributes, table[name]))
        # a protocol printed twice cannot be refreshed by position: rebuild every time
        self.heads = heads if len(tables) == len(heads) else None

    def _refresh(self, values: list[str], source: str, attributes: Attributes) -> None:
        heads, points = self.heads or [], self.points
        for i, (old, new) in enumerate(zip(self.values, values, strict=True)):
            if old == new:
                continue
            protocol, _, rest = new.partition(":")
            tokens, before = rest.split(), old.partition(":")[2].split()
            if len(tokens) != len(before) or not heads[i].startswith(f"{protocol}:"):
                parse_snmp_pair(heads[i], new, source, 2 * i + 2)  # raises, naming the line
            slots = self.slots[i]
            for index in [k for k, (a, b) in enumerate(zip(tokens, before, strict=True))
                          if a != b]:
                try:
                    value = int(tokens[index])
                except ValueError:
                    parse_snmp_pair(heads[i], new, source, 2 * i + 2)  # raises
                    raise
                slot = slots.get(index)
                if slot is not None:
                    points[slot[0]] = Point(slot[1], attributes, value)


# net/dev: (metric, column) per direction, in export order
NETDEV_COLUMNS = (("k8s.pod.network.io", "bytes"), ("netreceiver.pod.network.packets", "packets"),
                  ("k8s.pod.network.errors", "errs"), ("netreceiver.pod.network.dropped", "drop"))


# token position on an interface's line → position among its eight points
_DEV_POSITIONS = {0: 0, 1: 1, 2: 2, 3: 3, 8: 4, 9: 5, 10: 6, 11: 7}
_DevHeld = tuple[str, list[Point]]  # (line, points)


class DevMemo:
    """net/dev: an interface's changed line compared token by token; its points reused."""

    __slots__ = ("by_interface", "points", "text")

    def __init__(self) -> None:
        self.text: str | None = None
        self.points: list[Point] = []
        self.by_interface: dict[str, _DevHeld] = {}

    def update(self, text: str, source: str, attributes: Attributes,
               metric: Callable[[str], MetricDef]) -> list[Point]:
        if text == self.text:
            return self.points
        old, fresh, points = self.by_interface, {}, []
        try:
            for lineno, line in enumerate(text.splitlines()[HEADER_LINES:],
                                          start=HEADER_LINES + 1):
                name, _, rest = line.partition(":")
                held = old.get(name.strip())
                if held is None:
                    dev = parse_net_dev_line(line, source, lineno)
                    held = (line, _interface_points(dev, attributes, metric))
                elif held[0] != line:
                    held = _moved(held, line, rest.split(), source, lineno)
                fresh[name.strip()] = held
                points += held[1]
        except ParseError:
            self.__init__()  # type: ignore[misc]
            raise
        self.text, self.by_interface, self.points = text, fresh, points
        return points


def _moved(held: _DevHeld, line: str, tokens: list[str], source: str, lineno: int) -> _DevHeld:
    """The interface's points with a new Point where a column it exports moved."""
    before, points = held[0].partition(":")[2].split(), list(held[1])
    if len(tokens) != len(before):
        parse_net_dev_line(line, source, lineno)  # raises, naming the line
    for index in [k for k, (a, b) in enumerate(zip(tokens, before, strict=True)) if a != b]:
        if not tokens[index].isdigit():
            parse_net_dev_line(line, source, lineno)  # raises
        position = _DEV_POSITIONS.get(index)
        if position is not None:
            old = points[position]
            points[position] = Point(old.metric, old.attributes, int(tokens[index]))
    return line, points


def _interface_points(dev: NetDevCounters, attributes: Attributes,
                      metric: Callable[[str], MetricDef]) -> list[Point]:
    """Eight points: receive then transmit, four columns each (NETDEV_COLUMNS)."""
    points = []
    for direction, values in (("receive", dev.rx), ("transmit", dev.tx)):
        a = tuple(sorted((*attributes, ("network.interface.name", dev.interface),
                          ("network.io.direction", direction))))
        points += [Point(metric(name), a, values[col]) for name, col in NETDEV_COLUMNS]
    return points


class NetnsMemo:
    """Per namespace: the line memos, shared parses, and each probe's last output."""

    __slots__ = ("attributes", "dev", "mib", "parsed", "probes")

    def __init__(self, attributes: Attributes) -> None:
        self.attributes = attributes
        self.mib: dict[str, MibMemo] = {}
        self.dev = DevMemo()
        self.parsed: dict[str, tuple[str, object]] = {}  # file → (text, parse)
        self.probes: dict[str, tuple[tuple[str | None, ...], list[Point]]] = {}

    def parse(self, name: str, text: str, parser: Callable[[str], T]) -> T:
        """``parser(text)``, once per distinct text of the file (shared between probes)."""
        held = self.parsed.get(name)
        if held is not None and held[0] == text:
            return held[1]  # type: ignore[return-value]
        result = parser(text)
        self.parsed[name] = (text, result)
        return result
