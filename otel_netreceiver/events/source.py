"""Load the event programs and poll their perf buffers on one thread (read; parse in model.py).

One BPF object per probe (events/programs.py), or the counting collector's object on the
same tracepoint when that one was compiled with the probe's event handler
(events/hosting.py: one program invocation per event for both). The poll thread waits on every
object's perf buffers at once (bcc's perf_reader_poll over all readers, with a
timeout so ``close`` is noticed), decodes each sample, applies the per-type
token bucket, names the record (pod, reason, drop site, stack) and hands the
Event to the sink (the batch processor, or ``watch``'s printer). Every record
lost on the way is counted by reason: kernel budget, perf buffer full, lost
samples (perf buffer full), user rate limit, undecodable, location or stack not symbolised.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.kallsyms import KernelSymbols
from otel_netreceiver.bpf.loader import BpfLoader, Formats, Render
from otel_netreceiver.bpf.probes import UNITS
from otel_netreceiver.bpf.programs import ProbeSpec
from otel_netreceiver.bpf.tracefs import TracepointFormat, read_format
from otel_netreceiver.config.schema import EbpfConfig, EventsConfig
from otel_netreceiver.events.hosting import EventHosting
from otel_netreceiver.events.model import (
    EVENT_NAMES,
    DecodeError,
    Event,
    Names,
    Record,
    decode_record,
    to_event,
)
from otel_netreceiver.events.programs import (
    EVENT_PROBES,
    EventSettings,
    event_offsets,
    probes_for,
    render_events,
)
from otel_netreceiver.k8s.directory import PodDirectory
from otel_netreceiver.model import Attributes, attrs
from otel_netreceiver.netns.resolver import NetnsResolver
from otel_netreceiver.ratelimit import KeyedLimiter

log = logging.getLogger(__name__)
POLL_TIMEOUT_MS = 200
RESOLVE_EVERY = 1.0  # seconds between /proc walks for namespaces not seen yet
PAGES_PER_CPU = 64


def settings_of(config: EventsConfig) -> EventSettings:
    return EventSettings(tuple(config.types), config.kernel_budget,
                         int(config.softirq_threshold * 1e9), int(config.txlat_threshold * 1e9),
                         config.stack_traces)


def per_cpu_totals(table: Any) -> dict[int, int]:
    """Index → sum over CPUs of a BPF_PERCPU_ARRAY of u64."""
    return {int(k.value): int(sum(v)) for k, v in table.items()}


class PodLabels:
    """Namespace inode → pod attributes from the shared walk; a fresh walk for an inode the
    walk does not know, at most once a second (a pod born since the last walk).

    Identities (cgroup → pod UID) come with the walk; names come from the pod directory at
    each call, so a pod the Kubernetes watch names after its first event is named from then
    on. A namespace that died leaves with the next walk.
    """

    def __init__(self, resolver: NetnsResolver, clock: Callable[[], float] = time.monotonic):
        self.resolver, self._clock = resolver, clock
        self._last = -RESOLVE_EVERY

    def __call__(self, inode: int) -> Attributes:
        if not inode:
            return attrs({"netns.kind": "unknown"})
        walks = self.resolver.walks
        entry = self.resolver.resolve().get(inode)
        if entry is None and self._clock() - self._last >= RESOLVE_EVERY:
            self._last = self._clock()
            if walks == self.resolver.walks:  # not walked just now: walk for this inode
                entry = self.resolver.current(max_age=0).entries.get(inode)
        if entry is None:
            return attrs({"netns.inode": inode, "netns.kind": "unknown"})
        return self.resolver.attributes(inode, entry[1])

    def inode_of(self, cookie: int) -> int:
        """The inode of the namespace with this cookie (records of cgroup_skb programs), from
        the shared walk, or a fresh one at most once a second; 0 when unknown."""
        if not cookie:
            return 0
        inode = self.resolver.current().cookies.get(cookie)
        if inode is None and self._clock() - self._last >= RESOLVE_EVERY:
            self._last = self._clock()
            inode = self.resolver.current(max_age=0).cookies.get(cookie)
        return inode or 0


def event_render(settings: EventSettings, timing_sample: int,
                 ebpf: EbpfConfig | None = None) -> Render:
    """The C text of event-record probes for this kernel and these settings (pure); a
    probe's own ``defines`` hook gets collectors.ebpf (the dns probe's ports, addresses)."""
    def render(spec: ProbeSpec, formats: Formats, btf: Btf | None) -> str:
        offsets = event_offsets(btf) if btf is not None else {}
        offsets["TIMING_SAMPLE"] = timing_sample
        if spec.defines is not None and ebpf is not None:
            offsets.update(spec.defines(formats, ebpf))
        return render_events(spec, formats, offsets, settings)
    return render


class EventSource:
    def __init__(self, config: EventsConfig, ebpf: EbpfConfig, proc_root: str,
                 directory: PodDirectory, sink: Callable[[Event], object],
                 resolver: NetnsResolver | None = None,
                 symbols: KernelSymbols | None = None,
                 hosting: EventHosting | None = None) -> None:
        self._settings = settings_of(config)
        self._hosting = hosting  # handlers compiled into counting objects (hosting.py)
        self._timing_sample = ebpf.timing_sample  # TIMING_SAMPLE of the per-packet programs
        self._sink = sink
        self._proc_root = proc_root
        # the agent's shared resolver (walked each cycle), or a private one walked only for an
        # inode it does not know (``watch``, tests)
        self._labels = PodLabels(resolver or NetnsResolver(proc_root, directory, math.inf))
        self._limiter = KeyedLimiter(config.rate_limit, config.burst)
        self._formats: dict[tuple[str, str], TracepointFormat] = {}
        self._loaded: dict[str, Any] = {}
        self._sweeps: dict[str, Callable[[Any], list[bytes]]] = {}
        self._pending: list[tuple[str, bytes]] = []
        self._enums: dict[tuple[str, str, str], dict[int, str]] | None = None
        self._symbols = symbols if symbols is not None else KernelSymbols(proc_root)
        self.statuses: dict[str, str] = {}
        self.delivered: defaultdict[str, int] = defaultdict(int)
        self.dropped: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._lost = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="events-poll", daemon=True)
        self._load_all(ebpf, proc_root)

    # --- loading ------------------------------------------------------------------
    def _load_all(self, ebpf: EbpfConfig, proc_root: str) -> None:
        self._loader = BpfLoader(ebpf, proc_root, "event probe")
        self._formats = self._loader.formats
        wanted = probes_for(self._settings.types)
        self._hosted = self._take_hosted(wanted)
        loaded = self._loader.load_all(
            [EVENT_PROBES[probe] for probe in wanted if probe not in self._hosted],
            event_render(self._settings, self._timing_sample, ebpf), self._open_buffer)
        self._loaded = {p: self._hosted.get(p) or loaded[p] for p in wanted
                        if p in self._hosted or p in loaded}
        self.statuses = {p: "" if p in self._hosted else self._loader.statuses.get(p, "")
                         for p in wanted}
        self._sweeps = {name: sweep(proc_root, self._labels.resolver)
                        for name in self._loaded
                        if (sweep := UNITS[name].event_sweep) is not None}
        if self._loaded and (self._settings.stacks
                             or any(UNITS[name].symbols for name in self._loaded)):
            self._symbols.table()  # kallsyms (~0.2 s of CPU, ~3 MB) with the programs,
            # not whenever the first record that needs a name happens to arrive

    def _take_hosted(self, wanted: tuple[str, ...]) -> dict[str, Any]:
        """Probe → the counting object holding its event handler, perf buffer opened once
        per object (its records carry their type; the probe only finds the stack map)."""
        hosted: dict[str, Any] = {}
        for probe in wanted if self._hosting is not None else ():
            assert self._hosting is not None
            bpf = self._hosting.take(probe)
            if bpf is None:
                continue
            if not any(other is bpf for other in hosted.values()):
                try:
                    self._open_buffer(EVENT_PROBES[probe], bpf)
                except Exception:
                    self._hosting.release(bpf)
                    raise
            hosted[probe] = bpf
            for a in EVENT_PROBES[probe].attach:  # enums for the records' names
                self._formats[(a.category, a.event)] = read_format(a.category, a.event,
                                                                   self._loader.tracefs)
        return hosted

    def _objects(self) -> list[Any]:
        """Each loaded object once (probes hosted in one counting object share it)."""
        seen: dict[int, Any] = {}
        for bpf in self._loaded.values():
            seen.setdefault(id(bpf), bpf)
        return list(seen.values())

    def _open_buffer(self, spec: ProbeSpec, bpf: Any) -> None:
        bpf[b"events"].open_perf_buffer(self._receiver(spec.name), page_cnt=PAGES_PER_CPU,
                                       lost_cb=self._on_lost)

    def _receiver(self, probe: str) -> Callable[[int, Any, int], None]:
        def receive(cpu: int, data: Any, size: int) -> None:
            self._pending.append((probe, ctypes.string_at(data, size)))
        return receive

    def _on_lost(self, count: int) -> None:
        self._lost += count

    @property
    def loaded(self) -> tuple[str, ...]:
        return tuple(self._loaded)

    # --- polling ------------------------------------------------------------------
    def start(self) -> None:
        if self._loaded:
            self._thread.start()

    def _run(self) -> None:
        from bcc.libbcc import lib

        readers_list = [r for bpf in self._objects() for r in bpf.perf_buffers.values()]
        readers = (ctypes.c_void_p * len(readers_list))(*readers_list)
        while not self._stop.is_set():
            lib.perf_reader_poll(len(readers_list), readers, POLL_TIMEOUT_MS)
            try:
                self._sweep()
                self._drain()
            except Exception:  # one bad record must not stop the thread
                log.exception("event handling failed")

    def _sweep(self) -> None:
        """Records found in user space (Probe.event_sweep), through the same path."""
        for name, sweep in self._sweeps.items():
            self._pending.extend((name, data) for data in sweep(self._loaded[name]))

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        offset = time.time_ns() - time.monotonic_ns()  # bpf_ktime_get_ns is CLOCK_MONOTONIC
        for probe, data in pending:
            try:
                record = decode_record(data)
            except DecodeError:
                self.dropped[("unknown", "decode_failed")] += 1
                continue
            name = EVENT_NAMES[record.type]
            if not self._limiter.allow(name):
                continue
            self.delivered[name] += 1
            self._sink(self._event(probe, record, name, offset))

    def _names(self, probe: str) -> Names:
        if self._enums is None:  # the formats are complete once the programs are loaded
            self._enums = {(category, event, field): symbols
                           for (category, event), fmt in self._formats.items()
                           for field, symbols in fmt.symbols.items()}
        return Names(self._enums, self._symbols.name, self._labels, self._labels.inode_of)

    def _event(self, probe: str, record: Record, name: str, offset: int) -> Event:
        names = self._names(probe)
        event = to_event(record, names, offset, self._stack(probe, record, name, names))
        if record.location and event.location == "unknown":
            self.dropped[(name, "symbolisation_failed")] += 1
        return event

    def _stack(self, probe: str, record: Record, name: str, names: Names) -> tuple[str, ...]:
        if record.stack_id == -1:
            return ()
        if record.stack_id < -1:  # -errno - 1 from bpf_get_stackid
            self.dropped[(name, "stack_lost")] += 1
            return ()
        table = self._loaded[probe][b"ev_stacks"]
        frames = tuple(names.symbol(address) for address in table.walk(record.stack_id))
        if "unknown" in frames:
            self.dropped[(name, "symbolisation_failed")] += 1
        return frames

    # --- counters -----------------------------------------------------------------
    def drop_counts(self) -> dict[tuple[str, str], int]:
        """(event.name, reason) → records lost so far, kernel and user side."""
        out: defaultdict[tuple[str, str], int] = defaultdict(int, self.dropped)
        for bpf in self._objects():
            for table, reason in ((b"ev_suppressed", "rate_limit_kernel"),
                                  (b"ev_submit_failed", "perf_buffer_full")):
                for index, count in per_cpu_totals(bpf[table]).items():
                    if count:
                        out[(EVENT_NAMES[index], reason)] += count
        for name, count in list(self._limiter.refused.items()):
            out[(name, "rate_limit_user")] += count
        return dict(out)

    @property
    def perf_lost(self) -> int:
        """Samples the perf buffers reported lost (bcc's lost callback).

        The same samples as ev_submit_failed: perf_output_begin() counts a sample it has
        no room for in rb->lost and fails with -ENOSPC, which bpf_perf_event_output()
        returns (kernel/events/ring_buffer.c). Exported once, by type, from the kernel
        count (reason perf_buffer_full); this total is the cross-check.
        """
        return self._lost

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for bpf in self._objects():
            if not any(bpf is hosted for hosted in self._hosted.values()):
                bpf.cleanup()
        for bpf in self._hosted.values():  # one release per take; the last holder unloads
            assert self._hosting is not None
            self._hosting.release(bpf)
        self._hosted.clear()
        self._loaded.clear()
