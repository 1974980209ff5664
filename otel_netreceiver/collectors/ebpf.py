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
from otel_netreceiver.bpf.features import inspect, why_unavailable
from otel_netreceiver.bpf.fentry import function_hook_reason
from otel_netreceiver.bpf.kallsyms import Kallsyms
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
from otel_netreceiver.bpf.tracefs import TracepointFormat, read_format
from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.base import Traits
from otel_netreceiver.collectors.podnet.identity import NetnsResolver, PodDirectory
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.model import Attributes, Collection, Point, ProbeStatus, attrs

log = logging.getLogger(__name__)
UNKNOWN_NETNS: Attributes = attrs({"netns.kind": "unknown"})


def _total(value: Any) -> int:
    """A plain map value (ctypes scalar) or the sum of a per-CPU one (ctypes array)."""
    return int(value.value) if hasattr(value, "value") else int(sum(value))


class EbpfCollector:
    name = "ebpf"
    # a question re-reads the maps unless they were read after the error; series are born at
    # zero with their first event (the kernel counted nothing before)
    traits = Traits(refreshed=True, event_timed=True, born_at_zero=True)

    def __init__(self, config: EbpfConfig, proc_root: str, directory: PodDirectory) -> None:
        self._proc_root, self._config = proc_root, config
        self._peers = 0  # RETRANS_PEERS the tcpretrans program was built with
        self._resolver = NetnsResolver(proc_root, directory)
        self._statuses: dict[str, str] = {}  # probe → "" (loaded) or why not
        self._loaded: dict[str, Any] = {}
        self._formats: dict[tuple[str, str], TracepointFormat] = {}
        self._symbols: Kallsyms | None = None
        self._readers = {"packetloss": self._read_packetloss, "tcpreset": self._read_tcpreset,
                         "tcpretrans": self._read_tcpretrans, "net_softirq": self._read_softirq,
                         "netiftxlat": self._read_netiftxlat,
                         "socketlatency": self._pod_latency("netreceiver.pod.socket.latency"),
                         "kernellatency": self._pod_latency("netreceiver.pod.kernel.latency"),
                         "tcptwrcv": self._read_tcptwrcv, "virtcmdlatency": self._read_virtcmd}
        env = inspect(config.btf_path, proc_root, config.use_bcc, config.tracefs_path)
        self._tracefs = env.tracefs
        btf: Btf | None = None
        for name in config.probes:
            spec = PROBES[name]
            reason = why_unavailable(spec, env)
            if not reason:
                try:
                    btf = btf or (Btf.load(config.btf_path) if spec.needs_btf else None)
                    function = ""
                    if spec.functions and btf is not None:  # fentry: try before compiling
                        function, reason = function_hook_reason(btf, spec.functions)
                    if not reason:
                        self._loaded[name] = self._load(spec, btf, function)
                except Exception as exc:  # the verifier, the compiler, a missing field
                    reason = f"load failed: {type(exc).__name__}: {str(exc)[:300]}"
            self._statuses[name] = reason
            if reason:
                log.warning("eBPF probe %s unavailable: %s", name, reason)

    def _load(self, spec: ProbeSpec, btf: Btf | None, function: str = "") -> Any:
        from bcc import BPF

        for attach in spec.attach:
            self._formats[(attach.category, attach.event)] = read_format(
                attach.category, attach.event, self._tracefs)
        offsets = kernel_offsets(btf) if btf is not None else {}
        if spec.name == "tcpretrans":
            fmt = self._formats.get(("tcp", "tcp_retransmit_skb"))
            self._peers = retrans_peer_limit(fmt, self._config.retrans_peers)
            offsets["RETRANS_PEERS"] = self._peers
        bpf = BPF(text=render(spec, self._formats, offsets, function).encode())
        for attach in spec.attach:
            bpf.attach_tracepoint(tp=f"{attach.category}:{attach.event}".encode(),
                                  fn_name=attach.function.encode())
        return bpf

    # --- reading ------------------------------------------------------------------
    @staticmethod
    def _netns_items(table: Any, live: set[int], fields: tuple[str, ...]) -> list[tuple]:
        """(key fields..., count) of a per-namespace map; entries of dead namespaces deleted."""
        rows, dead = [], []
        for key, value in table.items():
            if key.netns and key.netns not in live:
                dead.append(key)
                continue
            rows.append((*(getattr(key, f) for f in fields), _total(value)))
        for key in dead:
            table.__delitem__(key)
        return rows

    def _labels(self) -> tuple[set[int], Any]:
        resolved = self._resolver.resolve()
        cache: dict[int, Attributes] = {}

        def labels(inode: int) -> Attributes:
            if inode not in cache:
                entry = resolved.get(inode)
                cache[inode] = (self._resolver.attributes(inode, entry[1]) if entry
                                else UNKNOWN_NETNS)
            return cache[inode]

        return set(resolved), labels

    def _reasons(self, category: str, event: str, field: str) -> dict[int, str]:
        fmt = self._formats.get((category, event))
        return fmt.symbols.get(field, {}) if fmt else {}

    def _read_packetloss(self, bpf: Any, live: set[int], labels: Any) -> list[Point]:
        reasons = self._reasons("skb", "kfree_skb", "reason")
        rows = self._netns_items(bpf[b"drops"], live, ("location", "netns", "reason"))
        if self._symbols is None:
            self._symbols = Kallsyms.load(self._proc_root)
        drops = [(netns, reason, count) for _, netns, reason, count in rows]
        sites = [(location, reason, count) for location, _, reason, count in rows]
        return drop_points(drops, reasons, labels) + site_points(sites, reasons,
                                                                 self._symbols.name)

    def _read_tcpreset(self, bpf: Any, live: set[int], labels: Any) -> list[Point]:
        rows = self._netns_items(bpf[b"resets"], live, ("netns", "direction", "state", "reason"))
        return reset_points(rows, self._reasons("tcp", "tcp_send_reset", "reason"), labels)

    def _read_tcpretrans(self, bpf: Any, live: set[int], labels: Any) -> list[Point]:
        points = retrans_points(self._netns_items(bpf[b"retrans"], live, ("netns", "state")),
                                labels)
        if self._peers:
            rows = self._netns_items(bpf[b"retrans_peers"], live,
                                     ("netns", "family", "dport", "daddr"))
            points += retrans_peer_points(rows, labels)
        return points

    @staticmethod
    def _read_softirq(bpf: Any, live: set[int], labels: Any) -> list[Point]:
        phases = {}
        for phase, hist, sums in (("schedule", b"sched_delay", b"sched_sum"),
                                  ("execute", b"exec_time", b"exec_sum")):
            slots: defaultdict[int, dict[int, int]] = defaultdict(dict)
            for key, value in bpf[hist].items():
                slots[key.vec][key.slot] = int(value.value)
            phases[phase] = (slots, {k.value: _total(v) for k, v in bpf[sums].items()})
        return softirq_points(phases)

    @staticmethod
    def _read_netiftxlat(bpf: Any, live: set[int], labels: Any) -> list[Point]:
        slots: defaultdict[str, dict[int, int]] = defaultdict(dict)
        sums: defaultdict[str, int] = defaultdict(int)
        for key, per_cpu in bpf[b"tx_latency"].items():  # per-CPU {count, sum}
            ifname = key.ifname.decode(errors="replace")
            slots[ifname][key.slot] = sum(v.count for v in per_cpu)
            sums[ifname] += sum(v.sum for v in per_cpu)
        return txlat_points(slots, sums)

    def _pod_latency(self, name: str) -> Any:
        def read(bpf: Any, live: set[int], labels: Any) -> list[Point]:
            rows, dead = [], []
            table = bpf[b"latency"]
            for key, per_cpu in table.items():  # per-CPU {count, sum}
                if key.netns and key.netns not in live:
                    dead.append(key)
                    continue
                rows.append((key.netns, key.direction, key.slot,
                             sum(v.count for v in per_cpu), sum(v.sum for v in per_cpu)))
            for key in dead:
                table.__delitem__(key)
            return pod_latency_points(name, rows, labels)
        return read

    def _read_tcptwrcv(self, bpf: Any, live: set[int], labels: Any) -> list[Point]:
        return timewait_points(self._netns_items(bpf[b"tw_packets"], live, ("netns",)), labels)

    @staticmethod
    def _read_virtcmd(bpf: Any, live: set[int], labels: Any) -> list[Point]:
        slots: defaultdict[int, dict[int, int]] = defaultdict(dict)
        for key, value in bpf[b"cmd_latency"].items():
            slots[getattr(key, "class")][key.slot] = int(value.value)
        sums = {getattr(k, "class"): int(v.value) for k, v in bpf[b"cmd_sum"].items()}
        return virtcmd_points(slots, sums)

    def collect(self) -> Collection:
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

