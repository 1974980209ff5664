"""The peers probe's reader: keep the kernel's peer table in step, then map rows → points.

Every cycle the reader asks the peer table source (the agent's zone sources,
peers/sources.py, through ``ProbeMaps.peer_table``) for the table of now; the source
returns the same object while nothing changed, so the kernel map is written only when the
table did (peers/lpm.py writes new rows before it deletes gone ones). Without a source
(a bench, ``once`` without zones) the table is the one that needs no zone: private ranges
are other_vpc, link-local ranges link_local, the rest the internet.

Zone numbers in the kernel are the reader's, not the table's: a table numbers its zones
by sorted name, so a zone discovered later would renumber the others while the kernel
still holds counts under the old numbers. The reader gives each zone name a number once
(``ZoneNumbers``) and rewrites the table's rows with it, so a count's zone never changes
meaning. The conversion of rows to points is pure (``peer_points``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.probes.peers.spec import GENERATION, TABLE, bump_generation
from otel_netreceiver.bpf.readers import NetnsLabels, definition, with_attrs
from otel_netreceiver.model import Attributes, Point
from otel_netreceiver.netns.bpfkeys import LIVE
from otel_netreceiver.peers.classes import NO_ZONE, PeerClass, PeerTable, build_table
from otel_netreceiver.peers.lpm import PeerMap
from otel_netreceiver.peers.records import PeerRow

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps

PACKETS, BYTES = "netreceiver.pod.peer.packets", "netreceiver.pod.peer.bytes"
DIRECTIONS = ("receive", "transmit")  # the C's egress flag
MAX_ZONES = 255  # the kernel value's u8

Row = tuple[int, int, int, int, int, int]  # netns, class, zone, egress, packets, bytes


class ZoneNumbers:
    """Zone name → the number the kernel stores, given once and kept (1..255)."""

    def __init__(self) -> None:
        self.names: list[str] = []  # names[i - 1] has number i
        self._number: dict[str, int] = {}

    def number(self, name: str) -> int:
        if not name:
            return NO_ZONE
        if name not in self._number and len(self.names) < MAX_ZONES:
            self.names.append(name)
            self._number[name] = len(self.names)
        return self._number.get(name, NO_ZONE)

    def name(self, number: int) -> str:
        return self.names[number - 1] if 1 <= number <= len(self.names) else ""

    def renumber(self, table: PeerTable) -> PeerTable:
        """The same rows with this object's zone numbers."""
        entries = tuple(dataclasses.replace(e, zone=self.number(table.zone_name(e.zone)))
                        for e in table.entries)
        return PeerTable(entries, tuple(self.names))


class PeersReader:
    """The installed table and the zone numbers, kept on the loaded object between cycles."""

    def __init__(self, peer_map: PeerMap, generation: Any = None) -> None:
        self.map = peer_map
        self.generation = generation  # the program's peer_gen (spec.py bump_generation)
        self.zones = ZoneNumbers()
        self._synced: PeerTable | None = None  # the source's last table, as given

    def sync(self, source: Callable[[], PeerTable] | None) -> None:
        table = source() if source is not None else _NO_ZONES
        if table is not self._synced:
            self.map.sync(self.zones.renumber(table))
            if self.generation is not None:  # the per-CPU caches answer from the new trie
                bump_generation(self.generation)
            self._synced = table

    def __call__(self, maps: ProbeMaps) -> list[Point]:
        self.sync(maps.peer_table)
        rows = [(k.netns, k.peer_class, k.zone, k.egress, sum(v.packets for v in vals),
                 sum(v.bytes for v in vals)) for k, vals in maps.live_items("peer_counts")]
        points = peer_points(rows, self.zones.name, maps.labels)
        if "PEER_TOP_MAX" in maps.built:
            points += self.top(maps)
        return points

    def top(self, maps: ProbeMaps) -> list[Point]:
        """Take the interval's per-peer rows (lookup-and-delete: a packet after the take
        starts the next interval's row) and hand them to the top-peer records, if any."""
        rows = [PeerRow(k.netns, bytes(k.addr), bool(k.egress), k.peer_class, k.zone,
                        sum(v.packets for v in vals), sum(v.bytes for v in vals))
                for k, vals in take(maps.table("peer_top"))]
        records = maps.peer_records
        if records is None:
            return []

        def pod(netns: int) -> Attributes | None:
            return maps.labels(netns) if maps.live.status(netns) == LIVE else None

        records.publish(rows, pod, self.zones.name, time.time_ns())
        return records.points()

    def status(self) -> str:
        """For ``probes``: the kernel table's size and the writes it refused (map full)."""
        stats = self.map.stats
        line = f"peer table {stats.entries} prefixes"
        if stats.refused:
            line += f", {stats.refused} writes refused (map full: {stats.last_error})"
        return line


_NO_ZONES = build_table("", {})


def take(table: Any) -> list[tuple[Any, Any]]:
    """Every row of a hash table, deleted as read: BPF_MAP_LOOKUP_AND_DELETE_BATCH (Linux
    5.6+: copy and delete under each bucket's lock), else read then delete key by key (a
    packet between a key's read and its delete is lost from the records)."""
    try:
        return list(table.items_lookup_and_delete_batch())
    except Exception:  # bcc raises a bare Exception naming the errno (EINVAL before 5.6)
        rows = list(table.items())
        for key, _ in rows:
            with contextlib.suppress(KeyError):  # evicted meanwhile (LRU)
                del table[key]
        return rows


def read(maps: ProbeMaps) -> list[Point]:
    """Probe.read: the reader's state lives on the loaded object (one per collector)."""
    if maps.bpf.state is None:
        maps.bpf.state = PeersReader(PeerMap(maps.table(TABLE)), maps.table(GENERATION))
    return maps.bpf.state(maps)


def class_label(number: int) -> str:
    try:
        return PeerClass(number).label
    except ValueError:
        return str(number)


def peer_points(rows: Iterable[Row], zone_name: Callable[[int], str],
                labels: NetnsLabels) -> list[Point]:
    """Kernel rows → packets and bytes per pod, class, peer zone and direction.

    peer.zone is set for the classes that have one (same_zone, other_zone; same_node
    carries this node's zone), never an address."""
    totals: defaultdict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for netns, peer_class, zone, egress, packets, nbytes in rows:
        extra = {"peer.class": class_label(peer_class),
                 "network.io.direction": DIRECTIONS[1 if egress else 0]}
        if zone_name(zone):
            extra["peer.zone"] = zone_name(zone)
        total = totals[with_attrs(labels(netns), **extra)]
        total[0] += packets
        total[1] += nbytes
    packets_metric, bytes_metric = definition(PACKETS), definition(BYTES)
    out = []
    for attributes, (packets, nbytes) in totals.items():
        out += [Point(packets_metric, attributes, packets), Point(bytes_metric, attributes, nbytes)]
    return out
