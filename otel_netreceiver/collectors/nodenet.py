"""Node-wide kernel network state, exported once per node (not repeated on every pod).

softnet_stat is per CPU but global; slabinfo is global; sockstat's orphan, alloc and
mem fields are global counters (net/ipv4/proc.c reads tcp_orphan_count and the
protocol's memory_allocated, not the namespace's); nf_conntrack_max is the init
namespace's limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from otel_netreceiver.catalogue import metric
from otel_netreceiver.config.schema import NodeNetConfig
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs
from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.procfs.slabinfo import parse_slabinfo
from otel_netreceiver.procfs.sockstat import parse_sockstat
from otel_netreceiver.procfs.stat_tables import parse_softnet_stat

PAGE_SIZE = 4096  # sockstat "mem" is in pages (sk_memory_allocated); 4 KiB on x86-64 and arm64


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


class NodeNetCollector:
    name = "nodenet"

    def __init__(self, config: NodeNetConfig, proc_root: str) -> None:
        self._config, self._proc = config, Path(proc_root)
        self._probes: dict[str, Callable[[], list[Point]]] = {
            "softnet": self._softnet, "slab": self._slab, "sockstat": self._sockstat,
            "conntrack": self._conntrack}

    def _softnet(self) -> list[Point]:
        text = _read(self._proc / "net" / "softnet_stat")
        if text is None:
            return []
        rows = parse_softnet_stat(text, str(self._proc / "net" / "softnet_stat"))
        return [Point(metric(f"netreceiver.softnet.{col}"), (), sum(r.get(col, 0) for r in rows))
                for col in ("processed", "dropped", "time_squeeze")]

    def _slab(self) -> list[Point]:
        text = _read(self._proc / "slabinfo")
        tcp = parse_slabinfo(text, str(self._proc / "slabinfo")).get("TCP") if text else None
        if tcp is None:
            return []
        objects = metric("netreceiver.slab.tcp.objects")
        return [Point(objects, attrs({"slab.state": "active"}), tcp.active_objects),
                Point(objects, attrs({"slab.state": "total"}), tcp.total_objects)]

    def _sockstat(self) -> list[Point]:
        text = _read(self._proc / "net" / "sockstat")
        if text is None:
            return []
        table = parse_sockstat(text, str(self._proc / "net" / "sockstat"))
        tcp, udp = table.get("TCP", {}), table.get("UDP", {})
        return [Point(metric("netreceiver.node.tcp.orphans"), (), tcp.get("orphan", 0)),
                Point(metric("netreceiver.node.tcp.allocated"), (), tcp.get("alloc", 0)),
                Point(metric("netreceiver.node.tcp.memory"), (), tcp.get("mem", 0) * PAGE_SIZE),
                Point(metric("netreceiver.node.udp.memory"), (), udp.get("mem", 0) * PAGE_SIZE)]

    def _conntrack(self) -> list[Point]:
        text = _read(self._proc / "sys" / "net" / "netfilter" / "nf_conntrack_max")
        if text is None or not text.strip().isdigit():
            return []
        return [Point(metric("netreceiver.conntrack.limit"), (), int(text))]

    def collect(self) -> Collection:
        points: list[Point] = []
        errors: list[str] = []
        for name in self._config.probes:
            try:
                points.extend(self._probes[name]())
            except (ParseError, PermissionError) as exc:
                errors.append(f"probe {name}: {exc}")
        return Collection.of(self.name, points, time.time_ns(), errors)

    def probe(self) -> ProbeStatus:
        return ProbeStatus(self.name, True, f"probes: {', '.join(self._config.probes)}")

    def close(self) -> None:
        pass
