"""History plus the node API: what the agent needs to answer "what did the node see?".

Every collector's collections also go to the history (change points of the metrics the
rules read, otel_netreceiver/history). The node's own namespace and the pods that asked
recently are sampled again every ``correlation.resolution`` (1 s) by a small per-pod
collector reading snmp, netstat and conntrack only: the 1 s history a pod's question
needs, without reading every pod of the node every second (200 pods x 3 files each
second would cost ~1% of a core for pods that never ask). A question also refreshes the
sampler and the eBPF and ENA collectors first, so the answer includes what happened just
before the error: the sampler and eBPF whenever their last read predates the error (at
most every 50 ms), ENA at most once a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from otel_netreceiver.collectors.base import Collector, traits_of
from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.schema import AgentConfig, PodNetConfig
from otel_netreceiver.diagnosis.emitter import DiagnosisCollector
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.recent import RecentDnsEvents
from otel_netreceiver.export.settings import ExporterSettings
from otel_netreceiver.history.store import History
from otel_netreceiver.k8s.directory import PodDirectory
from otel_netreceiver.model import ProbeStatus
from otel_netreceiver.netns.identity import NetnsIdentity
from otel_netreceiver.netns.resolver import NetnsResolver
from otel_netreceiver.nodeapi.callers import Caller, CallerIdentifier
from otel_netreceiver.nodeapi.correlate import Correlator
from otel_netreceiver.nodeapi.dns import METRICS as DNS_METRICS
from otel_netreceiver.nodeapi.dns import DnsEvidence, probe_off_reason
from otel_netreceiver.nodeapi.server import ApiContext, NodeApi
from otel_netreceiver.ratelimit import KeyedLimiter
from otel_netreceiver.runtime.scheduler import CollectorRunner

log = logging.getLogger(__name__)
SAMPLED_PROBES = ["snmp", "netstat", "conntrack"]


class CorrelationService:
    def __init__(self, cfg: AgentConfig, pods: PodDirectory, node: str,
                 top: Callable[[], dict[str, Any]] | None = None,
                 listen: bool = True, resolver: NetnsResolver | None = None) -> None:
        c = cfg.correlation
        self._ttl = c.active_pod_ttl
        self.history = History(c.history, metric_names() | set(DNS_METRICS))
        ebpf = cfg.collectors.ebpf
        self._dns_config = (ebpf.enabled, "dns" in ebpf.probes)
        self._ebpf_statuses: Callable[[], dict[str, str]] | None = None
        self.recent_dns = RecentDnsEvents(
            live=(lambda: _live_pods(resolver)) if resolver is not None else None)
        self._active: dict[str, float] = {}  # pod uid → when it last asked (monotonic)
        self._refreshed: list[CollectorRunner] = []
        self.api: NodeApi | None = None
        self.sampler: CollectorRunner | None = None
        self.status = "no listener configured (correlation.host, correlation.socket)"
        self.outcomes: Counter[str] = Counter()
        self.source = HistorySource(self.history)
        if not (c.host or c.socket):
            return
        if not listen:  # a report (probes, once) never takes a running agent's listeners
            self.status = "not listening (a one-off report)"
            return
        sampler = PodNetCollector(PodNetConfig(probes=SAMPLED_PROBES, include_host=True,
                                               export_quiet=True), cfg.proc_root, pods,
                                  select=self._sampled, resolver=resolver)
        self.sampler = CollectorRunner(sampler, self.history, c.resolution, 0.0,
                                       name="history")
        by_ip = getattr(pods, "by_ip", lambda ip: None)
        self.correlator = Correlator(RULES, self.source, node, self.refresh, pods=self.source,
                                     history_seconds=c.history,
                                     dns=DnsEvidence(self.history, self._dns_off,
                                                     self.recent_dns))
        ctx = ApiContext(CallerIdentifier(cfg.proc_root, pods.get, by_ip),
                         KeyedLimiter(c.rate, c.burst), self._correlate,
                         self.correlator.diagnose, node,
                         threading.BoundedSemaphore(c.max_connections), self.outcomes,
                         threading.Lock(), top)
        try:
            self.api = NodeApi(ctx, c.host, c.port, c.socket)
        except OSError as exc:  # an address not on this host, a socket dir we cannot create
            self.status = f"cannot listen: {exc}"
            log.error("node API unavailable: %s", self.status)
            return
        where = [f"tcp {c.host}:{self.api.tcp_port}"] if c.host else []
        self.status = ", ".join(where + ([f"unix {c.socket}"] if c.socket else []))

    def _dns_off(self) -> str:
        statuses = self._ebpf_statuses() if self._ebpf_statuses is not None else None
        return probe_off_reason(*self._dns_config, statuses)

    def event_tap(self, event: Event) -> None:
        """Every event the events pipeline delivers: DNS failures go to the ring."""
        self.recent_dns.observe(event)

    def _sampled(self, identity: NetnsIdentity) -> bool:
        if identity.kind == "host":
            return True
        asked = self._active.get(identity.pod_uid)
        return asked is not None and time.monotonic() - asked <= self._ttl

    def _correlate(self, body: Any, caller: Caller) -> dict[str, Any]:
        if caller.kind == "pod":
            self._active[caller.pod_uid] = time.monotonic()
        return self.correlator(body, caller)

    def refresh(self, at_unix_nano: int = 0) -> None:
        """Read the sources once more before answering: the sampler and eBPF unless their
        last read came after the error at ``at_unix_nano``; ENA at most once a second
        (each read is an admin command on the device)."""
        if self.sampler is not None:
            self.sampler.collect_now(0.25, at_unix_nano)
        for runner in list(self._refreshed):
            timed = traits_of(runner.collector).event_timed
            runner.collect_now(1.0, at_unix_nano if timed else 0)

    def diagnosis_collector(self, cfg: AgentConfig, resource: dict[str, str],
                            logs: ExporterSettings | None = None) -> Collector | None:
        """The playbooks over the last ``diagnose_window``, as a collector (emitter.py)."""
        window = min(cfg.correlation.diagnose_window, cfg.correlation.history)
        if window <= 0:
            return None
        return DiagnosisCollector(RULES, self.source, self.source, window,
                                  logs or cfg.exporters.otlp, resource)

    def watch_runners(self, runners: dict[str, CollectorRunner]) -> None:
        self._refreshed = [r for r in runners.values() if traits_of(r.collector).refreshed]
        ebpf = runners.get("ebpf")
        self._ebpf_statuses = getattr(ebpf.collector, "statuses", None) if ebpf else None
        self.history.born_at_zero({name for name, r in runners.items()
                                   if traits_of(r.collector).born_at_zero})

    def start(self) -> None:
        if self.api is None:
            return
        assert self.sampler is not None
        self.sampler.start()
        self.api.start()

    def stop(self) -> None:
        if self.api is not None:
            self.api.shutdown()
        if self.sampler is not None:
            self.sampler.stop()

    def probe(self) -> ProbeStatus:
        active = self.api is not None
        recent = self.recent_dns
        return ProbeStatus("nodeapi", active, f"{self.status}; history "
                           f"{self.history.window_seconds:.0f} s of {len(metric_names())} "
                           f"metrics, {self.history.series_count()} series; recent DNS "
                           f"events of {recent.pods()} pods, {sum(recent.dropped.values())} "
                           "dropped")


def _live_pods(resolver: NetnsResolver) -> set[str]:
    """UIDs of the pods whose network namespaces the agent's last walk found."""
    return {identity.pod_uid for _, identity in resolver.resolve().values()
            if identity.kind == "pod" and identity.pod_uid}
