"""What a probe's reader sees of its loaded programs: its maps, the live namespaces, names.

Thin I/O over one loaded BPF object: per-namespace rows of the live namespaces (entries
of dead ones deleted, so their series end and the maps do not fill with the dead), plus
what naming needs (tracepoint enums, kernel symbols) and what the program was built with.
The reader itself (in the probe's module) turns these rows into points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.programs import Formats
from otel_netreceiver.model import Attributes
from otel_netreceiver.netns.bpfkeys import DEAD, LIVE, KeyJoin
from otel_netreceiver.peers.classes import PeerTable

if TYPE_CHECKING:
    from otel_netreceiver.peers.records import PeerRecords


def total(value: Any) -> int:
    """A plain map value (ctypes scalar) or the sum of a per-CPU one (ctypes array)."""
    return int(value.value) if hasattr(value, "value") else int(sum(value))


class ProbeMaps:
    def __init__(self, bpf: Any, live: KeyJoin, formats: Formats,
                 symbol: Callable[[int], str], config: Any,
                 built: Mapping[str, Any],
                 peer_table: Callable[[], PeerTable] | None = None,
                 peer_records: PeerRecords | None = None,
                 memo: dict[Any, Any] | None = None) -> None:
        self.bpf, self.live, self._formats = bpf, live, formats
        # what the probe's reader keeps from one read to the next of the same loaded object
        # (packetloss: the largest totals exported, so a series never goes down)
        self.memo: dict[Any, Any] = memo if memo is not None else {}
        # the peer table of now (the agent's zone sources), for the probe that classes by peer
        self.peer_table = peer_table
        self.peer_records = peer_records  # where its top peers go as log records (or None)
        self.symbol = symbol  # kernel address → function name
        self.config = config  # collectors.ebpf
        self.built = built  # the #defines the program was rendered with

    def labels(self, netns: int) -> Attributes:
        return self.live.labels(netns)

    def table(self, name: str) -> Any:
        return self.bpf[name.encode()]

    def live_items(self, name: str) -> list[tuple[Any, Any]]:
        """(key, value) of a per-namespace map's live entries; dead namespaces' deleted."""
        table = self.table(name)
        rows, dead = [], []
        for key, value in table.items():
            status = self.live.status(key.netns)
            if status == LIVE:
                rows.append((key, value))
            elif status == DEAD:
                dead.append(key)
        for key in dead:
            table.__delitem__(key)
        return rows

    def netns_items(self, name: str, fields: tuple[str, ...]) -> list[tuple]:
        """(key fields..., count) of a per-namespace map's live entries."""
        return [(*(getattr(key, f) for f in fields), total(value))
                for key, value in self.live_items(name)]

    def per_cpu(self, name: str, index: int = 0) -> list[Any]:
        """One entry of a per-CPU array: its value on each possible CPU."""
        table = self.table(name)
        return list(table[table.Key(index)])

    def enum(self, category: str, event: str, field: str) -> dict[int, str]:
        """A tracepoint field's enum names from this kernel's format file (drop reasons)."""
        fmt = self._formats.get((category, event))
        return fmt.symbols.get(field, {}) if fmt else {}
