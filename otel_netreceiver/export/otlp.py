"""OTLP metrics export over HTTP/protobuf or gRPC, with bounded retries.

One export never takes longer than its deadline (retries included): the export
thread must get back to the next interval, and collection never waits for it
(collectors run in their own threads). A failed export is not queued: the
series are cumulative, so the next successful export carries the totals and
nothing is lost but resolution (docs/background.md, "OTLP into Prometheus and AMP").
Settings come from export/settings.py (the same resolver as the logs path),
transports with TLS from export/transport.py, and retries follow the OTLP
specification's rules in export/retry.py.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping

from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.export.base import ExportResult
from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.export.retry import Retrier
from otel_netreceiver.export.settings import ExporterSettings, resolve
from otel_netreceiver.export.transport import METRICS_METHOD, build_transport
from otel_netreceiver.model import Snapshot


def as_settings(config: OtlpConfig | ExporterSettings, signal: str) -> ExporterSettings:
    """Settings as given, or resolved from a bare OtlpConfig (no environment: tests, tools)."""
    return config if isinstance(config, ExporterSettings) else resolve(config, signal)


class OtlpExporter:
    """Encodes a snapshot once and sends it with the configured transport."""

    name = "otlp"

    def __init__(self, config: OtlpConfig | ExporterSettings, resource: Mapping[str, str],
                 ) -> None:
        self.settings = as_settings(config, "metrics")
        if not self.settings.enabled:
            raise ValueError(f"OTLP metrics export is off ({self.settings.disabled_by})")
        self._encoder = WireEncoder(resource)
        self._transport = build_transport(self.settings, METRICS_METHOD)
        self._stop = threading.Event()
        self._retrier = Retrier(self._stop, random.Random())

    @property
    def url(self) -> str:
        return self._transport.url

    def export(self, snapshot: Snapshot) -> ExportResult:
        points = snapshot.point_count()
        try:
            body = self._encoder.encode(snapshot)
            self._retrier.run(lambda t: self._transport.send(body, t), self.settings.deadline,
                              self.settings.timeout)
        except Exception as exc:  # an exporter must never raise into the export loop
            return ExportResult(False, error=str(exc) or type(exc).__name__)
        return ExportResult(True, points, len(body))

    def shutdown(self) -> None:
        self._stop.set()  # an export waiting out a backoff gives up now
        self._transport.close()
