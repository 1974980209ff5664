"""The running agent: collectors on their threads, one export loop, reloadable config.

Configuration changes are applied by rebuilding only what changed: the
collectors (their series continue in the store under the same collector
name, so start times survive a reload) or the exporters. The store outlives
every reload.

Once every collector has run once, the heap built so far (modules, catalogue,
per-namespace memos, the store's series) is frozen out of the cyclic garbage
collector (gc.freeze): measured with 200 busy pods, a full collection walked
~100,000 such objects for 20-25 ms about once per ten cycles, a quarter of the
per-pod collection's own cost (BENCHMARKS.md, busy pods). Frozen objects are still
freed by reference counting; only a reference cycle among them would outlive its
use, and the per-cycle structures keep none (runtime/series.py).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import TextIO

from otel_netreceiver.cloud.imds import InstanceMetadata, load_metadata
from otel_netreceiver.collectors.registry import BuildContext, build_collectors
from otel_netreceiver.config.loader import LoadedConfig
from otel_netreceiver.config.schema import AgentConfig
from otel_netreceiver.export.base import Exporter
from otel_netreceiver.export.console import ConsoleExporter
from otel_netreceiver.export.otlp import OtlpExporter
from otel_netreceiver.export.prometheus import PullServer
from otel_netreceiver.export.settings import ExporterSettings, resolve_loaded
from otel_netreceiver.export.transport import TlsConfigError
from otel_netreceiver.k8s.connect import api_factory
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.k8s.pods import PodWatcher
from otel_netreceiver.model import Collection, ProbeStatus
from otel_netreceiver.netns.resolver import NetnsResolver
from otel_netreceiver.peers import pipeline as peer_records
from otel_netreceiver.peers.classes import PeerTable
from otel_netreceiver.peers.sources import PeerZones
from otel_netreceiver.resource import build_resource, node_name
from otel_netreceiver.runtime.correlation import CorrelationService
from otel_netreceiver.runtime.push import push
from otel_netreceiver.runtime.scheduler import CollectorRunner, Fanout, Sink
from otel_netreceiver.runtime.selftelemetry import ExporterStats, RuntimeCounters, SelfCollector
from otel_netreceiver.runtime.store import SeriesStore
from otel_netreceiver.top.tracker import TopTracker

log = logging.getLogger(__name__)
# A namespace walk serves every user (podnet, eBPF, events, the 1 s history sampler) for
# this share of the collection interval: about one walk per cycle, whatever the phases.
WALK_SHARE = 0.9


def _collectors_part(c: AgentConfig) -> tuple:
    # exporters.otlp and the resource too: the events collector sends its records there
    # (events/collector.py)
    return (c.collectors, c.proc_root, c.sys_root, c.interval, c.jitter, c.exporters.otlp,
            c.service_name, tuple(sorted(c.resource_attributes.items())), c.node_name,
            c.correlation)


def _classes_by_peer(c: AgentConfig) -> bool:
    """The peers probe is configured: the zone sources run for it."""
    return c.collectors.ebpf.enabled and "peers" in c.collectors.ebpf.probes


def _exporters_part(c: AgentConfig) -> tuple:
    return (c.exporters, c.service_name, tuple(sorted(c.resource_attributes.items())), c.node_name)


class Agent:
    def __init__(self, loaded: LoadedConfig, env: Mapping[str, str],
                 stream: TextIO | None = None, metadata: InstanceMetadata | None = None,
                 listen: bool = True) -> None:
        """``listen=False`` for one-off reports (``probes``, ``once``): they share the running
        agent's configuration file, and must not bind or unlink its node-API socket."""
        self.loaded = loaded
        self._listen = listen
        self._env = dict(env)
        self._stream = stream or sys.stdout
        cfg = loaded.config
        if metadata is None:
            metadata, self.imds_status = load_metadata(cfg.imds, cfg.sys_root)
        else:
            self.imds_status = "provided"
        self.metadata = metadata
        self.store = SeriesStore(cfg.max_series_per_instrument,
                                 suppress_quiet=not cfg.collectors.podnet.export_quiet)
        self.runners: dict[str, CollectorRunner] = {}
        self.skipped: list[ProbeStatus] = []
        self.exporters: list[Exporter] = []
        self.pull: PullServer | None = None
        self.counters = RuntimeCounters(runners=self._runner_stats,
                                        dropped=self.store.dropped,
                                        suppressed=self.store.suppressed,
                                        nodeapi=self._nodeapi_stats,
                                        history=self._history_stats,
                                        nodeapi_dns=self._nodeapi_dns_drops)
        self._available: dict[str, bool] = {}
        self.counters.available = lambda: self._available
        self.pods: PodWatcher | None = None
        factory, self.k8s_status = api_factory(cfg.kubernetes, self._env)
        self._k8s_factory = factory
        if factory is not None:
            self.pods = PodWatcher(self.node, factory)
            self.counters.k8s = self._k8s_stats
        self.netns = NetnsResolver(cfg.proc_root, self._directory(), WALK_SHARE * cfg.interval)
        # zone sources for traffic by peer: no I/O until a probe starts them or `probes` asks
        self.peer_zones = PeerZones(cfg.peers, metadata, self.node, self._directory(),
                                    factory)
        self.peer_records: peer_records.PeerRecordPipeline | None = None  # top peers as logs
        self.correlation: CorrelationService | None = None
        self.top = TopTracker(self.node, cfg.exporters.interval or cfg.interval,
                              available=lambda: self._available)
        self._build_correlation(cfg)
        self._self = SelfCollector(self.counters, cfg.proc_root)
        self._lock = threading.RLock()
        # set by `run` when its stdin is a terminal: Enter prints the console's totals
        self.console_keys = False
        self._stop = threading.Event()
        self._export_thread = threading.Thread(target=self._export_loop, name="export",
                                               daemon=True)

    # --- lifecycle -------------------------------------------------------------
    def _peer_table(self) -> PeerTable:
        """The peer table of now, from the zone sources held now (a reload may replace them)."""
        return self.peer_zones.table()

    def _directory(self) -> PodWatcher | NoPods:
        return self.pods if self.pods is not None else NoPods()

    def _adopt_resolver(self, cfg: AgentConfig) -> None:
        """A reload keeps the one namespace resolver (and its identity cache) unless
        proc_root changed, and only adjusts how long a walk serves."""
        if self.netns.proc_root != cfg.proc_root:
            self.netns = NetnsResolver(cfg.proc_root, self._directory())
        # names come from the pod directory of now: the watcher may have been replaced
        # (a reload of the kubernetes section) since the resolver was made
        self.netns.directory = self._directory()
        self.netns.max_age = WALK_SHARE * cfg.interval

    def _build_correlation(self, cfg: AgentConfig) -> None:
        self.correlation = (CorrelationService(cfg, self._directory(), self.node,
                                               self.top.document, listen=self._listen,
                                               resolver=self.netns)
                            if cfg.correlation.enabled else None)

    def _runner_stats(self) -> dict:
        stats = {n: r.stats for n, r in list(self.runners.items())}
        sampler = self.correlation.sampler if self.correlation is not None else None
        if sampler is not None and sampler.stats.cycles:
            stats[sampler.name] = sampler.stats
        return stats

    def _nodeapi_stats(self) -> dict[str, int]:
        return dict(self.correlation.outcomes) if self.correlation is not None else {}

    def _nodeapi_dns_drops(self) -> dict[str, int]:
        return dict(self.correlation.recent_dns.dropped) if self.correlation is not None else {}

    def _history_stats(self) -> tuple[int, int] | None:
        if self.correlation is None:
            return None
        return self.correlation.history.series_count(), self.correlation.history.sample_count()

    def _k8s_stats(self) -> tuple[int, int, int] | None:
        if self.pods is None:
            return None
        return self.pods.count(), self.pods.stats.lists, self.pods.stats.errors

    def start(self) -> None:
        if self.pods is not None:
            self.pods.start()
        with self._lock:
            self._start_collectors(self.loaded.config)
            self._start_exporters(self.loaded.config)
            if self.correlation is not None:
                self.correlation.start()
        self._export_thread.start()

    def stop(self, flush: bool = True) -> None:
        """Stop collecting; with ``flush``, push one final export first (SIGTERM)."""
        self._stop.set()
        if self._export_thread.is_alive():
            self._export_thread.join(timeout=30)
        with self._lock:
            if flush:
                self.export_once()
            self._stop_collectors(list(self.runners))
            self._close_peer_records()
            self._stop_exporters()
            if self.correlation is not None:
                self.correlation.stop()
        if self.pods is not None:
            self.pods.stop()
        self.peer_zones.stop()

    @property
    def resource(self) -> dict[str, str]:
        return build_resource(self.loaded.config, self._env, self.metadata, self.loaded.explicit)

    def export_settings(self, signal: str) -> ExporterSettings:
        """The resolved OTLP settings of ``metrics`` or ``logs`` (export/settings.py)."""
        return resolve_loaded(self.loaded.config, self.loaded.explicit, self._env, signal)

    @property
    def node(self) -> str:
        return node_name(self.loaded.config, self._env)

    # --- configuration -----------------------------------------------------------
    def apply(self, loaded: LoadedConfig) -> None:
        """Switch to a new valid configuration, rebuilding only what it changes."""
        with self._lock:
            old, new = self.loaded.config, loaded.config
            self.loaded = loaded
            self.store.set_cap(new.max_series_per_instrument)
            self.store.set_suppress_quiet(not new.collectors.podnet.export_quiet)
            if _collectors_part(old) != _collectors_part(new):
                names = list(self.runners)
                self._stop_collectors(names)
                if old.correlation != new.correlation:
                    self._restart_correlation(new)
                self._start_collectors(new)
                for name in set(names) - set(self.runners):
                    self.store.remove_collector(name)
            if old.peers != new.peers:
                self._rebuild_peer_zones(new)
            if not _classes_by_peer(new) and self.peer_zones.running:
                self.peer_zones.stop()  # the peers probe is gone: no watch, no DescribeSubnets
            if _exporters_part(old) != _exporters_part(new):
                self._stop_exporters()
                self._start_exporters(new)
            self.top.set_interval(self.export_interval())
            logging.getLogger().setLevel(new.log_level.upper())

    def _rebuild_peer_zones(self, cfg: AgentConfig) -> None:
        """A changed peers section: new sources, running if the old ones were."""
        running = self.peer_zones.running
        self.peer_zones.stop()
        self.peer_zones = PeerZones(cfg.peers, self.metadata, self.node, self._directory(),
                                    self._k8s_factory)
        if running and _classes_by_peer(cfg):
            self.peer_zones.start()

    def _restart_correlation(self, cfg: AgentConfig) -> None:
        """A changed correlation section starts a new history and listener."""
        if self.correlation is not None:
            self.correlation.stop()
        self._build_correlation(cfg)
        if self.correlation is not None and self._export_thread.is_alive():
            self.correlation.start()

    def start_collectors_only(self) -> None:
        """Collect without exporting (``once``)."""
        with self._lock:
            self._start_collectors(self.loaded.config)

    def build_collectors_only(self) -> None:
        """Build collectors without running them (``probes``)."""
        with self._lock:
            self._start_collectors(self.loaded.config, run=False)

    def self_collection(self) -> Collection:
        return self._self.collect()

    def _start_collectors(self, cfg: AgentConfig, run: bool = True) -> None:
        logs = self.export_settings("logs")
        self._adopt_resolver(cfg)
        self._close_peer_records()
        if run:
            self.peer_records = peer_records.build(cfg, logs, self.resource, self._directory(),
                                                   lambda: self.peer_zones.node_infos(),
                                                   lambda: self.peer_zones.service_infos())
        ctx = BuildContext(cfg.proc_root, cfg.sys_root, self.metadata, self._directory(),
                           self.resource, logs=logs, netns=self.netns,
                           peer_table=self._peer_table,
                           peer_records=self.peer_records.records if self.peer_records else None,
                           event_tap=self.correlation.event_tap if self.correlation else None)
        if run and _classes_by_peer(cfg):  # the probe classes by zone
            self.peer_zones.start()
        collectors, self.skipped = build_collectors(cfg, ctx)
        if self.correlation is not None:
            try:
                diagnosis = self.correlation.diagnosis_collector(cfg, self.resource, logs)
            except (TlsConfigError, ImportError) as exc:  # certificate files, the grpc extra
                log.error("collector diagnosis unavailable: %s", exc)
                self.skipped.append(ProbeStatus("diagnosis", False, f"failed to start: {exc}"))
                diagnosis = None
            collectors += [diagnosis] if diagnosis is not None else []
        sink: Sink = self.store
        if self.correlation is not None:
            sink = Fanout(self.store, self.correlation.history)
        started = [CollectorRunner(c, sink, cfg.interval, cfg.jitter) for c in collectors]
        self.runners.update((runner.name, runner) for runner in started)
        if self.correlation is not None:  # before the first read: traits decide the history
            self.correlation.watch_runners(self.runners)
        for runner in started if run else ():
            runner.start()
        if run:  # what works here, for self-telemetry (probe() can cost a /proc scan: once)
            self._available = {s.name: s.active for s in self.probes()}

    def _close_peer_records(self) -> None:
        if self.peer_records is not None:
            self.peer_records.close()
            self.peer_records = None

    def _stop_collectors(self, names: list[str]) -> None:
        for name in names:
            self.runners.pop(name).stop()

    def _start_exporters(self, cfg: AgentConfig) -> None:
        ex = cfg.exporters
        metrics = self.export_settings("metrics")
        if metrics.enabled:
            try:
                self.exporters.append(OtlpExporter(metrics, self.resource))
            except (TlsConfigError, ImportError) as exc:  # a reload must not die half-way
                log.error("OTLP metrics export unavailable: %s", exc)
        console = ex.console.enabled if ex.console.enabled is not None else not metrics.enabled
        if console:
            self.exporters.append(ConsoleExporter(self.node, ex.console.show_zero, self._stream,
                                                 self.probes, ex.console.totals,
                                                 keys=self.console_keys))
        for exporter in self.exporters:
            self.counters.exporters.setdefault(exporter.name, ExporterStats())
        if ex.prometheus.enabled:
            self.pull = PullServer(ex.prometheus.host, ex.prometheus.port, self.store.snapshot,
                                   self.resource, self.health, self.ready,
                                   ex.prometheus.max_connections)
            self.pull.start()

    def print_totals(self) -> bool:
        """Every cumulative value, now, on the console (Enter on `run`'s terminal); False
        when the console exporter is off or has not printed a summary yet."""
        # not under self._lock, which an export holds for its whole length (an OTLP timeout):
        # a copy of the list is enough, and a console replaced by a reload still prints
        consoles = [e for e in list(self.exporters) if isinstance(e, ConsoleExporter)]
        return any([console.print_totals() for console in consoles])

    def _stop_exporters(self) -> None:
        for exporter in self.exporters:
            exporter.shutdown()
        self.exporters = []
        if self.pull is not None:
            self.pull.shutdown()
            self.pull = None

    # --- export ----------------------------------------------------------------
    def export_interval(self) -> float:
        cfg = self.loaded.config
        return cfg.exporters.interval or cfg.interval

    def _export_loop(self) -> None:
        """Export on a fixed grid that trails the collectors' latest possible phase.

        Collectors run at start + phase + k * interval with phase < jitter x interval
        (scheduler.py); exporting just after that keeps every export one period fresh.
        """
        self.wait_first_collection(timeout=self.export_interval())
        gc.freeze()  # the start-up heap leaves the cyclic collector's walks (module docstring)
        cfg = self.loaded.config
        start = time.monotonic() + cfg.jitter * cfg.interval + min(1.0, 0.1 * cfg.interval)
        self._stop.wait(max(start - time.monotonic(), 0.0))
        while not self._stop.is_set():
            try:
                with self._lock:
                    self.export_once()
            except Exception:  # the export loop must outlive any one exporter's bug
                self.counters.export_crashes += 1
                log.exception("export cycle failed; the next interval tries again")
            interval = self.export_interval()
            slot = int((time.monotonic() - start) // interval) + 1
            self._stop.wait(max(start + slot * interval - time.monotonic(), 0.0))

    def export_once(self) -> None:
        """Refresh self-telemetry, snapshot the store, push to every exporter."""
        self.store.update(self._self.collect())
        snapshot = self.store.snapshot()
        self.top.observe(snapshot)  # rates for GET /v1/top, from what is exported anyway
        self.counters.series_exported = {s.metric.name: len(s.points) for s in snapshot.metrics}
        all_ok = push(snapshot, self.exporters, self.counters)
        if all_ok:
            self.store.ack_baselines(snapshot)

    # --- status ----------------------------------------------------------------
    def wait_first_collection(self, timeout: float) -> bool:
        runners = list(self.runners.values())
        return all(r.stats.first_done.wait(timeout) for r in runners)

    def health(self) -> tuple[bool, str]:
        dead = [n for n, r in self.runners.items() if not r.alive()]
        if dead or (self._export_thread.ident and not self._export_thread.is_alive()
                    and not self._stop.is_set()):
            return False, f"threads stopped: {', '.join(dead) or 'export'}"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        pending = [n for n, r in self.runners.items() if not r.stats.first_done.is_set()]
        return (not pending, "ok" if not pending else f"waiting for {', '.join(pending)}")

    def probes(self) -> list[ProbeStatus]:
        statuses = []
        for runner in list(self.runners.values()):
            try:
                statuses.append(runner.collector.probe())
            except Exception as exc:
                statuses.append(ProbeStatus(runner.name, False, f"probe failed: {exc}"))
        k8s = ProbeStatus("kubernetes", self.pods is not None, self.k8s_status)
        if self.pods is not None and self.pods.stats.last_error:
            k8s = ProbeStatus("kubernetes", False, f"{self.k8s_status}; failing: "
                              f"{self.pods.stats.last_error}")
        if self.correlation is not None:
            statuses.append(self.correlation.probe())
        return statuses + self.skipped + [
            ProbeStatus("imds", bool(self.metadata.instance_id), self.imds_status), k8s,
            self.peer_zones.status()]
