"""Event records through the OpenTelemetry SDK: LoggerProvider + BatchLogRecordProcessor.

The SDK owns the log data model, the resource and the batching thread; this thin
wrapper keeps the two things ours did that the SDK does not:

- exact per-type drop counts (``netreceiver.events.dropped``). The SDK's queue drops
  its oldest record when full and counts nothing per type, so the wrapper admits
  a record only while fewer than ``max_queue_size`` are pending (emitted and not yet
  handed to the exporter) and counts refusals per event name; the SDK's queue then
  never overflows. Failed exports and what shutdown could not send are counted too.
- the export deadline: the SDK's processor does not pass its export timeout to the
  exporter (it keeps it unused), so the exporter here sends with the shared transport
  and retry rules (export/transport.py, export/retry.py) within ``export_timeout``.

The records are encoded from the SDK's own ReadableLogRecord (events/otlp_logs.py).
The SDK's logs API is not stable upstream, which is why the SDK version is pinned from
below in pyproject.toml and this module is the only place that touches it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

from otel_netreceiver import __version__
from otel_netreceiver.events.model import Event, summary
from otel_netreceiver.events.otlp_logs import SCOPE_NAME, encode_sdk_logs, event_attributes

log = logging.getLogger(__name__)

# Sends one encoded ExportLogsServiceRequest within the timeout: "" on success, else the error.
Send = Callable[[bytes, float], str]


class _Exporter(LogRecordExporter):
    """The SDK-facing side: hands each batch back to the wrapper."""

    def __init__(self, export: Callable[[Sequence[ReadableLogRecord]], bool]) -> None:
        self._export = export

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        ok = self._export(batch)
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _name_new_worker(before: set[threading.Thread], name: str) -> None:
    """Give the SDK's worker the pipeline's name (thread dumps, py-spy, the close test)."""
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith("OtelBatch"):
            thread.name = name


class SdkLogsProcessor:
    """emit(event) → SDK LoggerProvider → BatchLogRecordProcessor → send(encoded, timeout)."""

    def __init__(self, send: Send, resource: Mapping[str, str], max_queue_size: int = 2048,
                 max_export_batch_size: int = 512, schedule_delay: float = 1.0,
                 export_timeout: float = 10.0, thread_name: str = "events-export") -> None:
        self._send, self._timeout, self._max_queue = send, export_timeout, max_queue_size
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._pending_total = 0
        self._stopping = False
        self.exported: defaultdict[str, int] = defaultdict(int)
        self.dropped: defaultdict[tuple[str, str], int] = defaultdict(int)  # (name, reason)
        self.last_error = ""
        self._provider = LoggerProvider(resource=Resource(dict(resource)),
                                        shutdown_on_exit=False)
        before = set(threading.enumerate())
        self._provider.add_log_record_processor(BatchLogRecordProcessor(
            _Exporter(self._export), schedule_delay_millis=schedule_delay * 1000,
            max_export_batch_size=max_export_batch_size,
            export_timeout_millis=export_timeout * 1000, max_queue_size=max_queue_size))
        _name_new_worker(before, thread_name)
        self._logger = self._provider.get_logger(SCOPE_NAME, __version__)

    def start(self) -> None:
        """Nothing to do: the SDK's processor starts its worker when built."""

    def emit(self, event: Event) -> bool:
        """Queue a record; False (counted as queue_full) when full or shut down."""
        with self._lock:
            if self._stopping or self._pending_total >= self._max_queue:
                self.dropped[(event.name, "queue_full")] += 1
                return False
            self._pending[event.name] += 1
            self._pending_total += 1
        self._logger.emit(timestamp=event.time_unix_nano,
                          observed_timestamp=event.time_unix_nano,
                          severity_number=SeverityNumber(event.severity_number),
                          severity_text=event.severity_text, body=summary(event),
                          attributes=dict(event_attributes(event)), event_name=event.name)
        return True

    def _export(self, batch: Sequence[ReadableLogRecord]) -> bool:
        names = [r.log_record.event_name or "" for r in batch]
        with self._lock:
            self._pending.subtract(names)
            self._pending_total -= len(names)
        try:
            error = self._send(encode_sdk_logs(batch), self._timeout) if batch else ""
        except Exception as exc:  # a failing export must not kill the SDK's worker
            error = f"{type(exc).__name__}: {exc}"
        for name in names:
            if error:
                self.dropped[(name, "export_failed")] += 1
            else:
                self.exported[name] += 1
        if error and error != self.last_error:
            log.warning("event export failed (%d records lost): %s", len(batch), error)
        self.last_error = error
        return not error

    def shutdown(self, timeout: float = 10.0) -> None:
        """Export what is queued (the SDK flushes on shutdown), then count what was left."""
        with self._lock:
            self._stopping = True
        self._provider.shutdown()
        with self._lock:
            for name, count in self._pending.items():
                if count > 0:
                    self.dropped[(name, "shutdown")] += count
            self._pending.clear()
            self._pending_total = 0
