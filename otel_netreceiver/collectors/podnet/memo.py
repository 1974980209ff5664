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
    """One snmp or netstat file: header/values pairs re-parsed only where the values moved.

    ``points`` follows the catalogue's field order (the export order); ``slots`` says
    which positions each protocol's line feeds. A header that changed (another kernel
    after a live migration, say) or a duplicated protocol rebuilds everything.
    """

    __slots__ = ("heads", "points", "slots", "tables", "text", "values")

    def __init__(self) -> None:
        self.text: str | None = None
        self.heads: list[str] | None = None
        self.values: list[str] = []
        self.tables: dict[str, dict[str, int]] = {}
        self.points: list[Point] = []
        self.slots: dict[str, list[tuple[int, str, MetricDef]]] = {}

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

    def _rebuild(self, heads: list[str], values: list[str], source: str,
                 fields: Iterable[Field], attributes: Attributes) -> None:
        self.tables = dict(parse_snmp_pair(h, v, source, 2 * i + 2)
                           for i, (h, v) in enumerate(zip(heads, values, strict=True)))
        self.points, self.slots = [], {}
        for protocol, name, definition in fields:
            table = self.tables.get(protocol)
            if table is not None and name in table:
                self.slots.setdefault(protocol, []).append((len(self.points), name, definition))
                self.points.append(Point(definition, attributes, table[name]))
        # a protocol printed twice cannot be refreshed by position: rebuild every time
        self.heads = heads if len(self.tables) == len(heads) else None

    def _refresh(self, values: list[str], source: str, attributes: Attributes) -> None:
        heads, points, slots = self.heads or [], self.points, self.slots
        for i, (old, new) in enumerate(zip(self.values, values, strict=True)):
            if old == new:
                continue
            protocol, table = parse_snmp_pair(heads[i], new, source, 2 * i + 2)
            self.tables[protocol] = table
            for position, name, definition in slots.get(protocol, ()):
                _renew(points, position, definition, attributes, table[name])


# net/dev: (metric, column) per direction, in export order
NETDEV_COLUMNS = (("k8s.pod.network.io", "bytes"), ("netreceiver.pod.network.packets", "packets"),
                  ("k8s.pod.network.errors", "errs"), ("netreceiver.pod.network.dropped", "drop"))


class DevMemo:
    """net/dev: an interface's line parsed only when it changed; its points reused by value."""

    __slots__ = ("by_interface", "points", "text")

    def __init__(self) -> None:
        self.text: str | None = None
        self.points: list[Point] = []
        self.by_interface: dict[str, tuple[str, list[Point]]] = {}  # name → (line, points)

    def update(self, text: str, source: str, attributes: Attributes,
               metric: Callable[[str], MetricDef]) -> list[Point]:
        if text == self.text:
            return self.points
        old, fresh, points = self.by_interface, {}, []
        try:
            for lineno, line in enumerate(text.splitlines()[HEADER_LINES:],
                                          start=HEADER_LINES + 1):
                dev = parse_net_dev_line(line, source, lineno)
                held = old.get(dev.interface)
                if held is None or held[0] != line:
                    held = (line, _interface_points(dev, held, attributes, metric))
                fresh[dev.interface] = held
                points += held[1]
        except ParseError:
            self.__init__()  # type: ignore[misc]
            raise
        self.text, self.by_interface, self.points = text, fresh, points
        return points


def _interface_points(dev: NetDevCounters, held: tuple[str, list[Point]] | None,
                      attributes: Attributes, metric: Callable[[str], MetricDef]) -> list[Point]:
    """Eight points (receive and transmit, four columns each); last cycle's kept where unchanged."""
    if held is not None:
        points = list(held[1])
        values = [dev.rx[col] for _, col in NETDEV_COLUMNS] + \
                 [dev.tx[col] for _, col in NETDEV_COLUMNS]
        for position, value in enumerate(values):
            _renew(points, position, points[position].metric, points[position].attributes,
                   value)
        return points
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
