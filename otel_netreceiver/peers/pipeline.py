"""The top-peer records' way out: the event pipeline's SDK processor and OTLP logs exporter.

The peers probe's reader runs in the eBPF collector, which the events collector does not
own, so the records get their own processor and exporter of the same classes
(events/sdk_logs.py, events/otlp_logs.py: the same queue bound, drop counts, transports,
retry rules and resource), built by the agent with its collectors and closed with them.
Nothing is built without an OTLP logs endpoint, with the peers probe off or
collectors.ebpf.peers_top 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from otel_netreceiver.config.schema import AgentConfig
from otel_netreceiver.events.otlp_logs import OtlpLogsExporter
from otel_netreceiver.events.sdk_logs import SdkLogsProcessor
from otel_netreceiver.export.settings import ExporterSettings
from otel_netreceiver.k8s.nodes import NodeInfo
from otel_netreceiver.k8s.services import ServiceInfo
from otel_netreceiver.peers.records import PeerNames, PeerRecords, PodsByAddress


class PeerRecordPipeline:
    def __init__(self, cfg: AgentConfig, logs: ExporterSettings, resource: Mapping[str, str],
                 pods: PodsByAddress, nodes: Callable[[], Iterable[NodeInfo]],
                 services: Callable[[], Iterable[ServiceInfo]] = tuple) -> None:
        ebpf, events = cfg.collectors.ebpf, cfg.collectors.events
        self.exporter = OtlpLogsExporter(logs, resource)
        self.processor = SdkLogsProcessor(self.exporter.send, resource, events.max_queue_size,
                                          events.max_export_batch_size, events.schedule_delay,
                                          events.export_timeout, thread_name="peer-records")
        self.records = PeerRecords(self.processor.emit, ebpf.peers_top, ebpf.peers_top_records,
                                   PeerNames(pods, nodes, services),
                                   lambda: dict(self.processor.dropped))

    def close(self) -> None:
        """Flush what is queued (the SDK exports on shutdown), then close the transport."""
        self.processor.shutdown()
        self.exporter.close()


def build(cfg: AgentConfig, logs: ExporterSettings, resource: Mapping[str, str],
          pods: PodsByAddress, nodes: Callable[[], Iterable[NodeInfo]],
          services: Callable[[], Iterable[ServiceInfo]] = tuple,
          ) -> PeerRecordPipeline | None:
    ebpf = cfg.collectors.ebpf
    if not (ebpf.enabled and "peers" in ebpf.probes and ebpf.peers_top > 0 and logs.enabled):
        return None
    return PeerRecordPipeline(cfg, logs, resource, pods, nodes, services)
