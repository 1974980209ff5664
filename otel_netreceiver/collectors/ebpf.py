"""The eBPF collector: load each available probe, read its kernel maps every cycle.

Each probe is loaded on its own (one BPF object each), so a probe the kernel
refuses costs only that probe, reported with the reason by ``probe()``. Events
are aggregated in the kernel (per-CPU maps); user space reads the maps once per
cycle, so a flood of drops costs the agent nothing per event. Each probe's
reader (its module in bpf/probes/) turns its maps into points through a
``ProbeMaps`` view (bpf/maps.py), which deletes the entries of namespaces that no
longer exist, so their series disappear and the maps do not fill with the dead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.compose import SEPARATOR, render_composite
from otel_netreceiver.bpf.compose_hooks import is_hook_group, render_hooks
from otel_netreceiver.bpf.fentry import function_hook_reason
from otel_netreceiver.bpf.kallsyms import KernelSymbols
from otel_netreceiver.bpf.loader import BpfLoader, CompositeRender, Formats, ProbeUnavailable
from otel_netreceiver.bpf.maps import ProbeMaps, total
from otel_netreceiver.bpf.probes import PROBES, UNITS
from otel_netreceiver.bpf.programs import ProbeSpec, kernel_offsets, render
from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.base import Traits
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import PodDirectory
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs
from otel_netreceiver.netns.bpfkeys import KeyJoin
from otel_netreceiver.netns.resolver import NetnsResolver
from otel_netreceiver.peers.classes import PeerTable

if TYPE_CHECKING:
    from otel_netreceiver.events.hosting import EventHosting
    from otel_netreceiver.peers.records import PeerRecords

log = logging.getLogger(__name__)


class CountingRender:
    """The C text of counting probes for this kernel (a pure rendering of tracepoint formats,
    BTF offsets and configuration); remembers what the programs were built with."""

    def __init__(self, config: EbpfConfig, by_cookie: bool,
                 hosting: EventHosting | None = None) -> None:
        self.config, self.hosting = config, hosting
        # composite object name → the probes whose event handlers it was rendered with
        self.hosted: dict[str, tuple[str, ...]] = {}
        # per-pod maps keyed by namespace cookie where user space can read cookies, else inode
        self.by_cookie = by_cookie
        self.built: dict[str, dict[str, Any]] = {}  # probe → the #defines it was built with

    def _offsets(self, spec: ProbeSpec, formats: Formats, btf: Btf | None) -> dict[str, Any]:
        offsets = kernel_offsets(btf) if btf is not None else {}
        self.by_cookie = self.by_cookie and "OFF_NET_COOKIE" in offsets
        if self.by_cookie:
            offsets["NETNS_BY_COOKIE"] = 1
        offsets["TIMING_SAMPLE"] = self.config.timing_sample
        if spec.defines is not None:
            offsets.update(spec.defines(formats, self.config))
        return offsets

    def __call__(self, spec: ProbeSpec, formats: Formats, btf: Btf | None) -> str:
        function = ""
        if spec.functions and btf is not None:  # fentry targets: checked before compiling
            function, reason = function_hook_reason(btf, spec.functions)
            if reason:
                raise ProbeUnavailable(reason)
        offsets = self._offsets(spec, formats, btf)
        self.built[spec.name] = {**offsets, "LOST_SLOT": 0}
        self.hosted.pop(spec.name, None)  # loaded alone after all: no event handler in it
        return render(spec, formats, offsets, function)

    def composite(self, group: tuple[ProbeSpec, ...], formats: Formats,
                  btf: Btf | None, tp_btf: bool = False, host: bool = True) -> str:
        """Probes sharing a tracepoint as one program (bpf/compose.py), or the socket-hook
        probes as one per direction (bpf/compose_hooks.py); each keeps the #defines its
        reader needs and its own slot of the ``lost`` map. With ``host``, the event handlers
        that fit are compiled in (events/hosting.py)."""
        offsets: dict[str, Any] = {}
        for slot, spec in enumerate(group):
            own = self._offsets(spec, formats, btf)
            self.built[spec.name] = {**own, "LOST_SLOT": slot}
            offsets.update(own)
        name = SEPARATOR.join(s.name for s in group)
        self.hosted.pop(name, None)  # rendered again: only what this text has
        hosted = self.hosting.hosted(group, btf) if self.hosting is not None and host else None
        if hosted is not None:
            self.hosted[name] = tuple(s.name for s in hosted.specs)
            for spec in hosted.specs:  # the event texts' own #defines (dns: its table's size)
                own = spec.defines(formats, self.config) if spec.defines is not None else {}
                offsets.update({k: v for k, v in own.items() if k not in offsets})
        if is_hook_group(group):  # socket-hook probes: one program per direction
            return render_hooks(group, formats, offsets, hosted)
        return render_composite(group, formats, offsets, hosted, tp_btf)

    def bare(self, group: tuple[ProbeSpec, ...]) -> CompositeRender | None:
        """``composite`` without event handlers, for a group whose last text had some (the
        loader's second try for a refused socket-hook group: bpf/loader.py); else None."""
        if SEPARATOR.join(s.name for s in group) not in self.hosted:
            return None
        return lambda g, formats, btf, tp_btf: self.composite(g, formats, btf, tp_btf, False)


class EbpfCollector:
    name = "ebpf"
    # a question re-reads the maps unless they were read after the error; series are born at
    # zero with their first event (the kernel counted nothing before)
    traits = Traits(refreshed=True, event_timed=True, born_at_zero=True)

    def __init__(self, config: EbpfConfig, proc_root: str, directory: PodDirectory,
                 resolver: NetnsResolver | None = None,
                 symbols: KernelSymbols | None = None,
                 peer_table: Callable[[], PeerTable] | None = None,
                 peer_records: PeerRecords | None = None,
                 hosting: EventHosting | None = None) -> None:
        self._proc_root, self._config = proc_root, config
        self._hosting = hosting  # event handlers to compile in (events/hosting.py)
        self._peer_table = peer_table  # the agent's zone sources (the peers probe)
        self._peer_records = peer_records  # the peers probe's top-peer log records
        # the agent's shared resolver (one walk per cycle), or a private one walking each call
        self._resolver = resolver or NetnsResolver(proc_root, directory)
        self._symbols = symbols if symbols is not None else KernelSymbols(proc_root)
        self._loader = BpfLoader(config, proc_root, "eBPF probe")
        self._formats = self._loader.formats
        renderer = CountingRender(config, self._resolver.has_cookies, hosting)
        specs = [PROBES[name] for name in config.probes]
        alone = {s.name for s in specs if hosting is not None and hosting.events_of((s,))}
        self._loaded = self._loader.load_all(specs, renderer, composite=renderer.composite,
                                             compose_alone=alone, bare=renderer.bare)
        for name, (_, bpf) in self._loader.objects.items():
            if hosting is not None and name in renderer.hosted:  # loaded as rendered
                hosting.adopt(renderer.hosted[name], bpf)
        self._statuses = self._loader.statuses
        if any(UNITS[name].symbols for name in self._loaded):  # kallsyms: ~0.2 s of CPU,
            self._symbols.table()  # read now, never on the first drop a question reads
        # what the programs were built with, for the readers
        self._built, self._by_cookie = renderer.built, renderer.by_cookie
        self._memos: dict[str, dict] = {}  # per loaded object: what its reader keeps

    # --- reading ------------------------------------------------------------------
    def _maps(self, name: str, bpf: Any, live: KeyJoin) -> ProbeMaps:
        return ProbeMaps(bpf, live, self._formats, self._symbols.name, self._config,
                         self._built.get(name, {}), self._peer_table, self._peer_records,
                         self._memos.setdefault(name, {}))

    def collect(self) -> Collection:
        live = KeyJoin(self._resolver, self._by_cookie)
        points: list[Point] = []
        errors: list[str] = []
        lost = metric("netreceiver.bpf.lost")
        for name, bpf in self._loaded.items():
            try:
                read = UNITS[name].read
                if read is not None:
                    points.extend(read(self._maps(name, bpf, live)))
                slot = self._built.get(name, {}).get("LOST_SLOT", 0)
                points.append(Point(lost, attrs(probe=name),
                                    sum(total(v) for k, v in bpf[b"lost"].items()
                                        if k.value == slot)))
            except Exception as exc:  # one probe's maps failing must not cost the others
                errors.append(f"probe {name}: {type(exc).__name__}: {exc}")
        return Collection.of(self.name, points, time.time_ns(), errors)

    def housekeep(self) -> None:
        """Page the compiler out again now and then (bpf/loader.py): on the runner's own
        cycles, never on the read a node-API question triggers (runtime/scheduler.py)."""
        self._loader.tick()

    def probe(self) -> ProbeStatus:
        parts = [f"{n}: {'loaded' if not r else 'unavailable (' + r + ')'}{self._detail(n)}"
                 for n, r in self._statuses.items()]
        return ProbeStatus(self.name, bool(self._loaded), "; ".join(parts) or "no probes")

    def _detail(self, name: str) -> str:
        """A loaded probe's own status words (its reader's ``status()``), e.g. the peers
        probe's refused table writes; '' for most."""
        state = getattr(self._loaded.get(name), "state", None)
        line = state.status() if hasattr(state, "status") else ""
        line = "; ".join(w for w in (self._loader.programs.get(name, ""), line) if w)
        return f" ({line})" if line else ""

    def statuses(self) -> dict[str, str]:
        return dict(self._statuses)

    def objects(self) -> dict[str, tuple[ProbeSpec, Any]]:
        """Loaded object name (a probe's, or probes' joined by '+' when compiled together)
        → its spec (what it attaches) and bcc object (for bench/)."""
        # a probe sharing a socket-hook object holds a view of it (its ``owner``)
        return {name: pair for name, pair in self._loader.objects.items()
                if any(pair[1] is getattr(bpf, "owner", bpf) for bpf in self._loaded.values())}

    def program_fds(self) -> dict[str, int]:
        """'object/function' → program fd of every loaded program (for bench/bench_bpf.py)."""
        return {f"{name}/{fn.name.decode()}": fn.fd
                for name, (_, bpf) in self.objects().items() for fn in bpf.funcs.values()}

    def close(self) -> None:
        for _, bpf in self.objects().values():
            if self._hosting is not None and self._hosting.owns(bpf):
                self._hosting.release(bpf)  # the event source may still poll it
            else:
                bpf.cleanup()
        self._loaded.clear()

