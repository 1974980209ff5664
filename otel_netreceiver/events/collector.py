"""The agent's event pipeline as a collector: kernel → EventSource → SDK logs → OTLP logs.

It is a collector so that it is built, reported by ``probes``, rebuilt on reload
and closed like the others; its ``collect`` reports the pipeline's own counters
(netreceiver.events, netreceiver.events.dropped). Without an OTLP endpoint
nothing is loaded: events would have nowhere to go (``otel-netreceiver watch``
shows them on the terminal instead).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping

from otel_netreceiver.bpf.kallsyms import KernelSymbols
from otel_netreceiver.catalogue import metric
from otel_netreceiver.config.schema import EbpfConfig, EventsConfig, OtlpConfig
from otel_netreceiver.events.hosting import EventHosting
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.otlp_logs import OtlpLogsExporter
from otel_netreceiver.events.sdk_logs import SdkLogsProcessor
from otel_netreceiver.events.source import EventSource
from otel_netreceiver.export.settings import ExporterSettings
from otel_netreceiver.k8s.directory import PodDirectory
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs
from otel_netreceiver.netns.resolver import NetnsResolver

log = logging.getLogger(__name__)


def nowhere_to_go(otlp: OtlpConfig | ExporterSettings) -> str:
    """Why no event program is loaded with these OTLP settings ("": they are)."""
    if isinstance(otlp, ExporterSettings) and otlp.disabled_by not in ("", "no endpoint"):
        return (f"OTLP logs export is off ({otlp.disabled_by}): event records have nowhere "
                "to go; `otel-netreceiver watch` shows them on the terminal")
    if not otlp.endpoint:
        return ("no OTLP endpoint (exporters.otlp.endpoint): event records have nowhere to go; "
                "`otel-netreceiver watch` shows them on the terminal")
    return ""


def _tee(emit: Callable[[Event], object],
         tap: Callable[[Event], object]) -> Callable[[Event], None]:
    """Export first, then the tap (the node API's ring): a tap's failure costs no record."""
    def sink(event: Event) -> None:
        emit(event)
        try:
            tap(event)
        except Exception:
            log.exception("event tap failed for %s", event.name)
    return sink


class EventsCollector:
    name = "events"

    def __init__(self, config: EventsConfig, ebpf: EbpfConfig, otlp: OtlpConfig | ExporterSettings,
                 resource: Mapping[str, str], proc_root: str, directory: PodDirectory,
                 resolver: NetnsResolver | None = None,
                 symbols: KernelSymbols | None = None,
                 tap: Callable[[Event], object] | None = None,
                 hosting: EventHosting | None = None) -> None:
        self._reason = nowhere_to_go(otlp)
        self._source: EventSource | None = None
        self._processor: SdkLogsProcessor | None = None
        self._exporter: OtlpLogsExporter | None = None
        if self._reason:
            return
        self._exporter = OtlpLogsExporter(otlp, resource)
        self._processor = SdkLogsProcessor(self._exporter.send, resource, config.max_queue_size,
                                           config.max_export_batch_size, config.schedule_delay,
                                           config.export_timeout)
        emit = self._processor.emit
        sink = emit if tap is None else _tee(emit, tap)
        self._source = EventSource(config, ebpf, proc_root, directory, sink, resolver, symbols,
                                   hosting)
        self._processor.start()
        self._source.start()

    def collect(self) -> Collection:
        points: list[Point] = []
        if self._source is not None and self._processor is not None:
            emitted, dropped = metric("netreceiver.events"), metric("netreceiver.events.dropped")
            points += [Point(emitted, attrs({"event.name": n}), c)
                       for n, c in list(self._source.delivered.items())]
            totals: defaultdict[tuple[str, str], int] = defaultdict(int)
            for counts in (self._source.drop_counts(), dict(self._processor.dropped)):
                for key, count in counts.items():
                    totals[key] += count
            points += [Point(dropped, attrs({"event.name": n, "reason": r}), c)
                       for (n, r), c in totals.items()]
        return Collection.of(self.name, points, time.time_ns(), [])

    def probe(self) -> ProbeStatus:
        if self._source is None:
            return ProbeStatus(self.name, False, self._reason)
        parts = [f"{p}: {'loaded' if not r else 'unavailable (' + r + ')'}"
                 for p, r in self._source.statuses.items()]
        url = self._exporter.url if self._exporter else ""
        return ProbeStatus(self.name, bool(self._source.loaded),
                           f"to {url}; " + ("; ".join(parts) or "no event types"))

    def close(self) -> None:
        if self._source is not None:
            self._source.close()  # no new events first, then flush what is queued
        if self._processor is not None:
            self._processor.shutdown()
        if self._exporter is not None:
            self._exporter.close()
