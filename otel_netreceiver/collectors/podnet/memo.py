"""What one namespace's files said last cycle, so that a busy namespace costs little more
than a quiet one.

On a node every pod's counters move every cycle, but only a few lines of each file
move with them: loopback traffic changes the Ip, Icmp and Udp lines of snmp and the
IpExt line of netstat, not the long TcpExt line, and one interface's line of dev.
So each file is compared line by line with its previous read and only changed lines
are parsed. A line's exported values travel as one Block (model.py): a tuple of
series keys, fixed while the file's layout holds, and a tuple of values, replaced
when the line moved. No Point is built per value: the series store advances a block
whose values tuple is last cycle's in one step, and only walks the values of the
blocks that changed (runtime/store.py). A changed line is converted with one
``map(int, ...)`` and its exported tokens picked with one ``itemgetter``, both in C:
per-token Python work was most of a busy namespace's parse (BENCHMARKS.md). A parse
is shared by every probe that needs the file in a cycle (tcpsummary reads snmp's Tcp
line and sockstat, which their own probes parse).

State lives per namespace inode and is dropped with the namespace or when its
attributes change (pod metadata arrived): block keys carry the attributes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import TypeVar

from otel_netreceiver.model import Attributes, Block, MetricDef, Point
from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.procfs.netdev import HEADER_LINES, NetDevCounters, parse_net_dev_line
from otel_netreceiver.procfs.snmp import check_pairs, parse_snmp_pair

T = TypeVar("T")
Field = tuple[str, str, MetricDef]  # (protocol, counter name, metric) of the catalogue
_Row = tuple[int, Callable[[list[int]], object], bool]  # (block index, picker, single token)


def _picker(indices: list[int]) -> tuple[Callable[[list[int]], object], bool]:
    """itemgetter of the exported tokens; with one token it returns the value, not a tuple."""
    return itemgetter(*indices), len(indices) == 1


def _renew(blocks: list[Block], row: _Row, ints: list[int]) -> None:
    """A new Block only where an exported value moved: the others keep their identity."""
    index, pick, single = row
    values = (pick(ints),) if single else pick(ints)
    if values != blocks[index].values:
        blocks[index] = Block(blocks[index].keys, values)  # type: ignore[arg-type]


class MibMemo:
    """One snmp or netstat file: header/values pairs, re-read line by line where they moved.

    ``blocks`` holds one Block per values line that carries exported fields (the
    catalogue's order within a line); ``rows`` maps a values line to its block and the
    picker of its exported tokens. A changed line is converted in full (validating it)
    and its block renewed only if an exported value moved. A header that changed
    (another kernel after a live migration, say) or a duplicated protocol rebuilds
    everything; anything malformed is re-parsed in full for its error message. Only
    lines, interned names and the blocks are kept, not parsed tables: hundreds of
    namespaces each hold one.
    """

    __slots__ = ("blocks", "counts", "heads", "keys", "protocols", "rows", "text", "values")

    def __init__(self) -> None:
        self.text: str | None = None
        self.heads: list[str] | None = None
        self.values: list[str] = []
        self.keys: dict[str, tuple[int, list[str]]] = {}  # protocol → (line, counter names)
        self.counts: list[int] = []  # names per header
        self.protocols: list[str] = []  # per header, its protocol and colon
        self.rows: list[_Row | None] = []  # per values line
        self.blocks: list[Block] = []

    def update(self, text: str, source: str, fields: Iterable[Field],
               attributes: Attributes) -> list[Block]:
        """This cycle's blocks (the returned list is reused and changed in place later)."""
        if text == self.text:
            return self.blocks
        lines = text.splitlines()
        try:
            check_pairs(lines, source)
            heads, values = lines[0::2], lines[1::2]
            if heads == self.heads:
                self._refresh(values, source)
            else:
                self._rebuild(heads, values, source, fields, attributes)
        except ParseError:
            self.__init__()  # type: ignore[misc]  # half-updated: start over next cycle
            raise
        self.text, self.values = text, values
        return self.blocks

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
        self.keys, self.counts, self.protocols = {}, [], []
        for i, head in enumerate(heads):
            protocol, _, names = head.partition(":")
            self.keys[protocol] = (i, [sys.intern(n) for n in names.split()])
            self.counts.append(len(names.split()))
            self.protocols.append(sys.intern(f"{protocol}:"))
        per_line: list[list[tuple[int, MetricDef, int]]] = [[] for _ in heads]
        for protocol, name, definition in fields:
            table = tables.get(protocol)
            if table is not None and name in table:
                i, names = self.keys[protocol]
                per_line[i].append((names.index(name), definition, table[name]))
        self.rows, self.blocks = [], []
        for exported in per_line:
            if not exported:
                self.rows.append(None)
                continue
            pick, single = _picker([index for index, _, _ in exported])
            self.rows.append((len(self.blocks), pick, single))
            self.blocks.append(Block(tuple((d, attributes) for _, d, _ in exported),
                                     tuple(v for _, _, v in exported)))
        # a protocol printed twice cannot be refreshed by position: rebuild every time
        self.heads = heads if len(tables) == len(heads) else None

    def _refresh(self, values: list[str], source: str) -> None:
        heads, blocks, rows, counts = self.heads or [], self.blocks, self.rows, self.counts
        for i, (old, new) in enumerate(zip(self.values, values, strict=True)):
            if old == new:
                continue
            protocol = self.protocols[i]  # "Udp:": the header's, which held
            try:
                ints = list(map(int, new[len(protocol):].split()))
            except ValueError:
                ints = []
            if len(ints) != counts[i] or not new.startswith(protocol):
                parse_snmp_pair(heads[i], new, source, 2 * i + 2)  # raises, naming the line
                raise ParseError(source, 2 * i + 2, f"unexpected values line {new!r}")
            row = rows[i]
            if row is not None:
                _renew(blocks, row, ints)


# net/dev: (metric, column) per direction, in export order
NETDEV_COLUMNS = (("k8s.pod.network.io", "bytes"), ("netreceiver.pod.network.packets", "packets"),
                  ("k8s.pod.network.errors", "errs"), ("netreceiver.pod.network.dropped", "drop"))


# an interface line's tokens exported: receive then transmit bytes, packets, errs, drop
_DEV_ROW: _Row = (0, itemgetter(0, 1, 2, 3, 8, 9, 10, 11), False)
_DevHeld = tuple[str, Block]  # (line, block)


class DevMemo:
    """net/dev: one Block per interface, renewed when an exported column of its line moved."""

    __slots__ = ("blocks", "by_interface", "text")

    def __init__(self) -> None:
        self.text: str | None = None
        self.blocks: list[Block] = []
        self.by_interface: dict[str, _DevHeld] = {}

    def update(self, text: str, source: str, attributes: Attributes,
               metric: Callable[[str], MetricDef]) -> list[Block]:
        if text == self.text:
            return self.blocks
        old, fresh, blocks = self.by_interface, {}, []
        try:
            for lineno, line in enumerate(text.splitlines()[HEADER_LINES:],
                                          start=HEADER_LINES + 1):
                name, _, rest = line.partition(":")
                held = old.get(name.strip())
                if held is None:
                    dev = parse_net_dev_line(line, source, lineno)
                    held = (line, _interface_block(dev, attributes, metric))
                elif held[0] != line:
                    held = (line, _moved(held[1], line, rest.split(), source, lineno))
                fresh[name.strip()] = held
                blocks.append(held[1])
        except ParseError:
            self.__init__()  # type: ignore[misc]
            raise
        self.text, self.by_interface, self.blocks = text, fresh, blocks
        return blocks


def _moved(block: Block, line: str, tokens: list[str], source: str, lineno: int) -> Block:
    """The interface's block, renewed if a column it exports moved."""
    if len(tokens) != 16 or not "".join(tokens).isdigit():
        parse_net_dev_line(line, source, lineno)  # raises, naming the line
    renewed = [block]
    _renew(renewed, _DEV_ROW, list(map(int, tokens)))
    return renewed[0]


def _interface_block(dev: NetDevCounters, attributes: Attributes,
                     metric: Callable[[str], MetricDef]) -> Block:
    """Eight series: receive then transmit, four columns each (NETDEV_COLUMNS)."""
    keys, values = [], []
    for direction, columns in (("receive", dev.rx), ("transmit", dev.tx)):
        a = tuple(sorted((*attributes, ("network.interface.name", dev.interface),
                          ("network.io.direction", direction))))
        keys += [(metric(name), a) for name, _ in NETDEV_COLUMNS]
        values += [columns[col] for _, col in NETDEV_COLUMNS]
    return Block(tuple(keys), tuple(values))


def as_blocks(points: list[Point], previous: list[Block] | None) -> list[Block]:
    """A probe's points as one block, reusing last cycle's keys and block where they held."""
    if not points:
        return []
    keys = tuple((p.metric, p.attributes) for p in points)
    values = tuple(p.value for p in points)
    if previous and previous[0].keys == keys:
        if previous[0].values == values:
            return previous
        keys = previous[0].keys
    return [Block(keys, values)]


class NetnsMemo:
    """Per namespace: the line memos, shared parses, and each probe's last output."""

    __slots__ = ("attributes", "dev", "mib", "parsed", "probes")

    def __init__(self, attributes: Attributes) -> None:
        self.attributes = attributes
        self.mib: dict[str, MibMemo] = {}
        self.dev = DevMemo()
        self.parsed: dict[str, tuple[str, object]] = {}  # file → (text, parse)
        self.probes: dict[str, tuple[tuple[str | None, ...] | None, list[Block]]] = {}

    def parse(self, name: str, text: str, parser: Callable[[str], T]) -> T:
        """``parser(text)``, once per distinct text of the file (shared between probes)."""
        held = self.parsed.get(name)
        if held is not None and held[0] == text:
            return held[1]  # type: ignore[return-value]
        result = parser(text)
        self.parsed[name] = (text, result)
        return result
