"""The eBPF collector: load each available probe, read its kernel maps every cycle.

Each probe is loaded on its own (one BPF object each), so a probe the kernel
refuses costs only that probe, reported with the reason by ``probe()``. Events
are aggregated in the kernel (per-CPU maps); user space reads the maps once per
cycle, so a flood of drops costs the agent nothing per event. Map entries of
namespaces that no longer exist are deleted, so their series disappear and the
maps do not fill with the dead.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.fentry import function_hook_reason
from otel_netreceiver.bpf.kallsyms import KernelSymbols
from otel_netreceiver.bpf.loader import BpfLoader, Formats, ProbeUnavailable
from otel_netreceiver.bpf.programs import (
    PROBES,
    ProbeSpec,
    kernel_offsets,
    render,
    retrans_peer_limit,
)
from otel_netreceiver.bpf.readers import (
    drop_points,
    pod_latency_points,
    reset_points,
    retrans_peer_points,
    retrans_points,
    site_points,
    softirq_points,
    timewait_points,
    txlat_points,
    virtcmd_points,
)
from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.base import Traits
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import PodDirectory
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs
from otel_netreceiver.netns.bpfkeys import DEAD, LIVE, KeyJoin
from otel_netreceiver.netns.resolver import NetnsResolver

log = logging.getLogger(__name__)


def _total(value: Any) -> int:
    """A plain map value (ctypes scalar) or the sum of a per-CPU one (ctypes array)."""
    return int(value.value) if hasattr(value, "value") else int(sum(value))


class CountingRender:
    """The C text of counting probes for this kernel (a pure rendering of tracepoint formats,
    BTF offsets and configuration); remembers what the programs were built with."""

    def __init__(self, config: EbpfConfig, by_cookie: bool) -> None:
        self.config = config
        # per-pod maps keyed by namespace cookie where user space can read cookies, else inode
        self.by_cookie = by_cookie
        self.peers = 0  # RETRANS_PEERS the tcpretrans program was built with

    def __call__(self, spec: ProbeSpec, formats: Formats, btf: Btf | None) -> str:
        function = ""
        if spec.functions and btf is not None:  # fentry targets: checked before compiling
            function, reason = function_hook_reason(btf, spec.functions)
            if reason:
                raise ProbeUnavailable(reason)
        offsets = kernel_offsets(btf) if btf is not None else {}
        self.by_cookie = self.by_cookie and "OFF_NET_COOKIE" in offsets
        if self.by_cookie:
            offsets["NETNS_BY_COOKIE"] = 1
        offsets["TIMING_SAMPLE"] = self.config.timing_sample
        if spec.name == "tcpretrans":
            fmt = formats.get(("tcp", "tcp_retransmit_skb"))
            self.peers = retrans_peer_limit(fmt, self.config.retrans_peers)
            offsets["RETRANS_PEERS"] = self.peers
        return render(spec, formats, offsets, function)


class EbpfCollector:
    name = "ebpf"
    # a question re-reads the maps unless they were read after the error; series are born at
    # zero with their first event (the kernel counted nothing before)
    traits = Traits(refreshed=True, event_timed=True, born_at_zero=True)

    def __init__(self, config: EbpfConfig, proc_root: str, directory: PodDirectory,
                 resolver: NetnsResolver | None = None,
                 symbols: KernelSymbols | None = None) -> None:
        self._proc_root, self._config = proc_root, config
        # the agent's shared resolver (one walk per cycle), or a private one walking each call
        self._resolver = resolver or NetnsResolver(proc_root, directory)
        self._symbols = symbols if symbols is not None else KernelSymbols(proc_root)
        self._readers = {"packetloss": self._read_packetloss, "tcpreset": self._read_tcpreset,
                         "tcpretrans": self._read_tcpretrans, "net_softirq": self._read_softirq,
                         "netiftxlat": self._read_netiftxlat,
                         "socketlatency": self._pod_latency("netreceiver.pod.socket.latency"),
                         "kernellatency": self._pod_latency("netreceiver.pod.kernel.latency"),
                         "tcptwrcv": self._read_tcptwrcv, "virtcmdlatency": self._read_virtcmd}
        self._loader = BpfLoader(config, proc_root, "eBPF probe")
        self._formats = self._loader.formats
        renderer = CountingRender(config, self._resolver.has_cookies)
        self._loaded = self._loader.load_all([PROBES[name] for name in config.probes], renderer)
        self._statuses = self._loader.statuses
        # what the programs were built with, for the readers
        self._peers, self._by_cookie = renderer.peers, renderer.by_cookie

    # --- reading ------------------------------------------------------------------
    @staticmethod
    def _live_items(table: Any, live: KeyJoin) -> list[tuple[Any, Any]]:
        """(key, value) of a per-namespace map's live entries; dead namespaces' deleted."""
        rows, dead = [], []
        for key, value in table.items():
            status = live.status(key.netns)
            if status == LIVE:
                rows.append((key, value))
            elif status == DEAD:
                dead.append(key)
        for key in dead:
            table.__delitem__(key)
        return rows

    @classmethod
    def _netns_items(cls, table: Any, live: KeyJoin, fields: tuple[str, ...]) -> list[tuple]:
        """(key fields..., count) of a per-namespace map's live entries."""
        return [(*(getattr(key, f) for f in fields), _total(value))
                for key, value in cls._live_items(table, live)]

    def _labels(self) -> tuple[KeyJoin, Any]:
        join = KeyJoin(self._resolver, self._by_cookie)
        return join, join.labels

    def _reasons(self, category: str, event: str, field: str) -> dict[int, str]:
        fmt = self._formats.get((category, event))
        return fmt.symbols.get(field, {}) if fmt else {}

    def _read_packetloss(self, bpf: Any, live: KeyJoin, labels: Any) -> list[Point]:
        reasons = self._reasons("skb", "kfree_skb", "reason")
        rows = self._netns_items(bpf[b"drops"], live, ("location", "netns", "reason"))
        drops = [(netns, reason, count) for _, netns, reason, count in rows]
        sites = [(location, reason, count) for location, _, reason, count in rows]
        return drop_points(drops, reasons, labels) + site_points(sites, reasons,
                                                                 self._symbols.name)

    def _read_tcpreset(self, bpf: Any, live: KeyJoin, labels: Any) -> list[Point]:
        rows = self._netns_items(bpf[b"resets"], live, ("netns", "direction", "state", "reason"))
        return reset_points(rows, self._reasons("tcp", "tcp_send_reset", "reason"), labels)

    def _read_tcpretrans(self, bpf: Any, live: KeyJoin, labels: Any) -> list[Point]:
        points = retrans_points(self._netns_items(bpf[b"retrans"], live, ("netns", "state")),
                                labels)
        if self._peers:
            rows = self._netns_items(bpf[b"retrans_peers"], live,
                                     ("netns", "family", "dport", "daddr"))
            points += retrans_peer_points(rows, labels)
        return points

    def _read_softirq(self, bpf: Any, live: KeyJoin, labels: Any) -> list[Point]:
        phases = {}
        for phase, hist, sums in (("schedule", b"sched_delay", b"sched_sum"),
                                  ("execute", b"exec_time", b"exec_sum")):
            slots: defaultdict[int, dict[int, int]] = defaultdict(dict)
            for key, value in bpf[hist].items():
                slots[key.vec][key.slot] = int(value.value)
            phases[phase] = (slots, {k.value: _total(v) for k, v in bpf[sums].items()})
        return softirq_points(phases, self._config.timing_sample)

    def _read_netiftxlat(self, bpf: Any, live: KeyJoin, labels: Any) -> list[Point]:
        slots: defaultdict[str, dict[int, int]] = defaultdict(dict)
        sums: defaultdict[str, int] = defaultdict(int)
        for key, per_cpu in bpf[b"tx_latency"].items():  # per-CPU {count, sum}
            ifname = key.ifname.decode(errors="replace")
            slots[ifname][key.slot] = sum(v.count for v in per_cpu)
            sums[ifname] += sum(v.sum for v in per_cpu)
        return txlat_points(slots, sums, self._config.timing_sample)

    def _pod_latency(self, name: str) -> Any:
        def read(bpf: Any, live: KeyJoin, labels: Any) -> list[Point]:
            rows = [(key.netns, key.direction, key.slot, sum(v.count for v in per_cpu),
                     sum(v.sum for v in per_cpu))  # per-CPU {count, sum}
                    for key, per_cpu in self._live_items(bpf[b"latency"], live)]
            return pod_latency_points(name, rows, labels)
        return read

    def _read_tcptwrcv(self, bpf: Any, live: KeyJoin, labels: Any) -> list[Point]:
        return timewait_points(self._netns_items(bpf[b"tw_packets"], live, ("netns",)), labels)

    @staticmethod
    def _read_virtcmd(bpf: Any, live: KeyJoin, labels: Any) -> list[Point]:
        slots: defaultdict[int, dict[int, int]] = defaultdict(dict)
        for key, value in bpf[b"cmd_latency"].items():
            slots[getattr(key, "class")][key.slot] = int(value.value)
        sums = {getattr(k, "class"): int(v.value) for k, v in bpf[b"cmd_sum"].items()}
        return virtcmd_points(slots, sums)

    def collect(self) -> Collection:
        self._loader.tick()
        live, labels = self._labels()
        points: list[Point] = []
        errors: list[str] = []
        lost = metric("netreceiver.bpf.lost")
        for name, bpf in self._loaded.items():
            try:
                points.extend(self._readers[name](bpf, live, labels))
                points.append(Point(lost, attrs(probe=name),
                                    sum(_total(v) for _, v in bpf[b"lost"].items())))
            except Exception as exc:  # one probe's maps failing must not cost the others
                errors.append(f"probe {name}: {type(exc).__name__}: {exc}")
        return Collection.of(self.name, points, time.time_ns(), errors)

    def probe(self) -> ProbeStatus:
        parts = [f"{n}: {'loaded' if not r else 'unavailable (' + r + ')'}"
                 for n, r in self._statuses.items()]
        return ProbeStatus(self.name, bool(self._loaded), "; ".join(parts) or "no probes")

    def statuses(self) -> dict[str, str]:
        return dict(self._statuses)

    def program_fds(self) -> dict[str, int]:
        """'probe/function' → program fd of every loaded program (for bench/bench_bpf.py)."""
        return {f"{probe}/{fn.name.decode()}": fn.fd for probe, bpf in self._loaded.items()
                for fn in bpf.funcs.values()}

    def close(self) -> None:
        for bpf in self._loaded.values():
            bpf.cleanup()
        self._loaded.clear()

