"""Events → OTLP ``ExportLogsServiceRequest`` over OTLP/HTTP (``/v1/logs``) or gRPC.

Event volume is small (rate-limited twice), so the generated opentelemetry-proto
classes are used directly, unlike the metrics path (export/otlp_wire.py). The
settings come from the same resolver as the metrics exporter's
(export/settings.py, signal ``logs``: OTEL_EXPORTER_OTLP_LOGS_* before the generic
variables), sent with the same transports and retry rules; the resource is the
same, so logs and metrics of a node join on it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.sdk._logs import ReadableLogRecord

from otel_netreceiver import __version__
from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.events.model import Event, summary
from otel_netreceiver.export.otlp import as_settings
from otel_netreceiver.export.retry import Retrier
from otel_netreceiver.export.settings import ExporterSettings
from otel_netreceiver.export.transport import LOGS_METHOD, build_transport

SCOPE_NAME = "otel_netreceiver.events"
_HAS_EVENT_NAME = "event_name" in LogRecord.DESCRIPTOR.fields_by_name  # proto >= 1.5


def _any(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _kv(key: str, value: str | int) -> KeyValue:
    return KeyValue(key=key, value=_any(value))


def event_attributes(event: Event) -> list[tuple[str, str | int]]:
    """The log record's attributes: event name, pod, addresses, reason, site, the type's own."""
    out: list[tuple[str, str | int]] = [("event.name", event.name)]
    out += [(k, v) for k, v in event.pod if v is not None]
    for prefix, endpoint in (("source", event.source), ("destination", event.destination)):
        if endpoint is not None:
            out += [(f"{prefix}.address", endpoint.address), (f"{prefix}.port", endpoint.port)]
    if event.reason:
        out.append(("reason", event.reason))
    if event.location:
        out.append(("location", event.location))
    if event.stack:
        out.append(("stack", "\n".join(event.stack)))
    out += list(event.attributes)
    return out


def log_record(event: Event) -> LogRecord:
    record = LogRecord(time_unix_nano=event.time_unix_nano,
                       observed_time_unix_nano=event.time_unix_nano,
                       severity_number=event.severity_number,
                       severity_text=event.severity_text,
                       body=AnyValue(string_value=summary(event)),
                       attributes=[_kv(k, v) for k, v in event_attributes(event)])
    if _HAS_EVENT_NAME:
        record.event_name = event.name
    return record


def encode_logs(events: Sequence[Event], resource: Mapping[str, str]) -> bytes:
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=[_kv(k, v) for k, v in sorted(resource.items())]),
        scope_logs=[ScopeLogs(scope=InstrumentationScope(name=SCOPE_NAME, version=__version__),
                              log_records=[log_record(e) for e in events])])])
    return request.SerializeToString()


def sdk_log_record(record: ReadableLogRecord) -> LogRecord:
    """One record of the OpenTelemetry SDK (events/sdk_logs.py) as an OTLP LogRecord."""
    lr = record.log_record
    proto = LogRecord(time_unix_nano=lr.timestamp or 0,
                      observed_time_unix_nano=lr.observed_timestamp or 0,
                      severity_number=lr.severity_number.value if lr.severity_number else 0,
                      severity_text=lr.severity_text or "", body=_any(lr.body),
                      attributes=[KeyValue(key=k, value=_any(v))
                                  for k, v in (lr.attributes or {}).items()])
    if _HAS_EVENT_NAME and lr.event_name:
        proto.event_name = lr.event_name
    return proto


def encode_sdk_logs(records: Sequence[ReadableLogRecord]) -> bytes:
    """An ExportLogsServiceRequest for SDK records of one LoggerProvider and one logger."""
    first = records[0]
    scope = first.instrumentation_scope
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=[_kv(k, v) for k, v in  # type: ignore[arg-type]
                                      sorted(first.resource.attributes.items())]),
        scope_logs=[ScopeLogs(scope=InstrumentationScope(
            name=scope.name if scope else SCOPE_NAME,
            version=(scope.version or "") if scope else __version__),
            log_records=[sdk_log_record(r) for r in records])])])
    return request.SerializeToString()


class OtlpLogsExporter:
    """Sends batches with the shared transports (HTTP or gRPC) and retry rules."""

    def __init__(self, config: OtlpConfig | ExporterSettings, resource: Mapping[str, str],
                 ) -> None:
        self.settings = as_settings(config, "logs")
        self._resource = dict(resource)
        self._transport = build_transport(self.settings, LOGS_METHOD)
        self._stop = threading.Event()
        self._retrier = Retrier(self._stop, random.Random())

    @property
    def url(self) -> str:
        return self._transport.url

    def export(self, events: Sequence[Event], timeout: float) -> str:
        """'' when sent, else the error (the processor counts the batch as dropped)."""
        return self.send(encode_logs(events, self._resource), timeout)

    def send(self, body: bytes, timeout: float) -> str:
        """Send an encoded request with retries within ``timeout``: '' or the error."""
        try:
            self._retrier.run(lambda t: self._transport.send(body, t), timeout,
                              self.settings.timeout)
        except Exception as exc:
            return str(exc) or type(exc).__name__
        return ""

    def close(self) -> None:
        self._stop.set()
        self._transport.close()
