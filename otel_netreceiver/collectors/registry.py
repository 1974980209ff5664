"""Which collectors exist, and how each is built from its configuration section.

A new collector plugs in here: one entry mapping its name to a builder. A
builder that fails (a missing file, an unsupported kernel) costs only that
collector: it is reported unavailable with the reason and the rest run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.kallsyms import KernelSymbols
from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.collectors.base import Collector
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.collectors.ena import EnaCollector
from otel_netreceiver.collectors.ethtool_source import EthtoolSource
from otel_netreceiver.collectors.ethtool_stats import EthtoolStatsCollector
from otel_netreceiver.collectors.netdev import NetdevCollector
from otel_netreceiver.collectors.nodenet import NodeNetCollector
from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.schema import AgentConfig
from otel_netreceiver.events.hosting import EventHosting
from otel_netreceiver.export.settings import ExporterSettings
from otel_netreceiver.k8s.directory import NoPods, PodDirectory
from otel_netreceiver.model import ProbeStatus
from otel_netreceiver.netns.resolver import NetnsResolver
from otel_netreceiver.peers.classes import PeerTable

if TYPE_CHECKING:
    from otel_netreceiver.peers.records import PeerRecords

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildContext:
    """What builders need from the host beyond their own section."""

    proc_root: str
    sys_root: str
    metadata: InstanceMetadata
    pods: PodDirectory = field(default_factory=NoPods)
    resource: dict[str, str] = field(default_factory=dict)  # the exporters' (events use it)
    logs: ExporterSettings | None = None  # resolved OTLP logs settings (export/settings.py)
    # one kallsyms table for the counting and the event probes (bpf/kallsyms.py)
    symbols: KernelSymbols | None = None
    netns: NetnsResolver | None = None  # the agent's, shared: one namespace walk per cycle
    # the peer table of now, from the agent's zone sources (peers/sources.py): the peers probe
    peer_table: Callable[[], PeerTable] | None = None
    peer_records: PeerRecords | None = None  # the peers probe's top-peer log records
    # also handed every delivered event (the node API's recent DNS events, events/recent.py)
    event_tap: Callable[[Any], object] | None = None
    # event handlers compiled into the counting objects (events/hosting.py); set by
    # build_collectors when both the ebpf and the events collector will load programs
    hosting: EventHosting | None = None


def _ena(config: AgentConfig, ctx: BuildContext) -> Collector:
    section = config.collectors.ena
    source = (EthtoolSource.replay(section.replay) if section.replay
              else EthtoolSource.live(ctx.sys_root))
    return EnaCollector(section, source, ctx.metadata.eni_by_mac)


def _ethtool(config: AgentConfig, ctx: BuildContext) -> Collector:
    return EthtoolStatsCollector(config.collectors.ethtool, EthtoolSource.live(ctx.sys_root))


def _netdev(config: AgentConfig, ctx: BuildContext) -> Collector:
    return NetdevCollector(config.collectors.netdev, ctx.proc_root)


def _podnet(config: AgentConfig, ctx: BuildContext) -> Collector:
    return PodNetCollector(config.collectors.podnet, ctx.proc_root, ctx.pods,
                           resolver=ctx.netns)


def _nodenet(config: AgentConfig, ctx: BuildContext) -> Collector:
    return NodeNetCollector(config.collectors.nodenet, ctx.proc_root)


def _ebpf(config: AgentConfig, ctx: BuildContext) -> Collector:
    return EbpfCollector(config.collectors.ebpf, ctx.proc_root, ctx.pods, ctx.netns,
                         ctx.symbols, ctx.peer_table, ctx.peer_records,
                         hosting=ctx.hosting)


def _events(config: AgentConfig, ctx: BuildContext) -> Collector:
    from otel_netreceiver.events.collector import EventsCollector  # protobuf logs: only if on

    c = config.collectors
    return EventsCollector(c.events, c.ebpf, ctx.logs or config.exporters.otlp, ctx.resource,
                           ctx.proc_root, ctx.pods, ctx.netns, ctx.symbols, ctx.event_tap,
                           hosting=ctx.hosting)


def _event_hosting(config: AgentConfig, ctx: BuildContext) -> EventHosting | None:
    """One owner per tracepoint (events/hosting.py): only when both collectors will load
    programs, so a counting object never runs an event handler nobody reads."""
    c = config.collectors
    if not (c.ebpf.enabled and c.events.enabled and c.events.types):
        return None
    from otel_netreceiver.events.collector import nowhere_to_go  # protobuf: only if on
    from otel_netreceiver.events.source import settings_of

    if nowhere_to_go(ctx.logs or config.exporters.otlp):
        return None
    return EventHosting(settings_of(c.events), c.ebpf.timing_sample)


BUILDERS: dict[str, Callable[[AgentConfig, BuildContext], Collector]] = {
    "ena": _ena,
    "ethtool": _ethtool,
    "netdev": _netdev,
    "podnet": _podnet,
    "nodenet": _nodenet,
    "ebpf": _ebpf,
    "events": _events,
}


def build_collectors(config: AgentConfig,
                     ctx: BuildContext) -> tuple[list[Collector], list[ProbeStatus]]:
    """Enabled collectors, plus a status line for each one not built (and why)."""
    if ctx.symbols is None:
        ctx = replace(ctx, symbols=KernelSymbols(ctx.proc_root))
    if ctx.hosting is None:
        ctx = replace(ctx, hosting=_event_hosting(config, ctx))
    built: list[Collector] = []
    skipped: list[ProbeStatus] = []
    for name, builder in BUILDERS.items():
        if not getattr(config.collectors, name).enabled:
            skipped.append(ProbeStatus(name, False, f"disabled (collectors.{name}.enabled: false)"))
            continue
        try:
            built.append(builder(config, ctx))
        except Exception as exc:
            log.error("collector %s unavailable: %s", name, exc)
            skipped.append(ProbeStatus(name, False, f"failed to start: {exc}"))
    return built, skipped
