"""Event records through the OpenTelemetry SDK's LoggerProvider and BatchLogRecordProcessor.

The wrapper must keep exact per-type drop counts and the export deadline, and
the records it sends must be the ones the hand-written encoder produced for the
same events (same resource, scope, times, severity, body, attributes, event name).
"""

from __future__ import annotations

import threading
import time

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from otel_netreceiver.events.model import decode_record, to_event
from otel_netreceiver.events.otlp_logs import encode_logs
from otel_netreceiver.events.sdk_logs import SdkLogsProcessor
from tests.unit.test_events_pure import NAMES, _record, _sockaddr

RESOURCE = {"service.name": "otel-netreceiver", "k8s.node.name": "node-1"}


def _event(name: str = "PACKETLOSS"):  # type: ignore[no-untyped-def]
    return to_event(decode_record(_record(name)), NAMES, 0)


def _wait(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_records_match_the_hand_written_encoding_of_the_same_events() -> None:
    reset = to_event(decode_record(_record("TCP_SEND_RST", reason=2, state=255,
                                           saddr=_sockaddr("10.0.0.1", 80),
                                           daddr=_sockaddr("10.0.0.2", 40000))), NAMES, 0)
    events = [reset, _event()]
    sent: list[bytes] = []
    processor = SdkLogsProcessor(lambda body, timeout: sent.append(body) or "", RESOURCE)
    for event in events:
        assert processor.emit(event)
    processor.shutdown()
    ours = ExportLogsServiceRequest.FromString(sent[0])
    before = ExportLogsServiceRequest.FromString(encode_logs(events, RESOURCE))
    assert len(sent) == 1 and ours == before
    assert processor.exported == {"TCP_SEND_RST": 1, "PACKETLOSS": 1}


def test_a_full_queue_refuses_and_counts_per_type_and_the_sdk_never_drops() -> None:
    release, batches = threading.Event(), []

    def send(body: bytes, timeout: float) -> str:
        release.wait(5)
        batches.append(len(ExportLogsServiceRequest.FromString(body)
                           .resource_logs[0].scope_logs[0].log_records))
        return ""

    processor = SdkLogsProcessor(send, RESOURCE, max_queue_size=4, max_export_batch_size=2,
                                 schedule_delay=0.05)
    accepted = [processor.emit(_event()) for _ in range(2)]  # the worker takes these two ...
    assert _wait(lambda: processor._pending_total == 0)
    accepted += [processor.emit(_event("TCP_SEND_RST" if i % 2 else "PACKETLOSS"))
                 for i in range(10)]  # ... and blocks in send
    assert accepted.count(True) == 6
    assert dict(processor.dropped) == {("PACKETLOSS", "queue_full"): 3,
                                       ("TCP_SEND_RST", "queue_full"): 3}
    release.set()
    processor.shutdown()
    assert sum(batches) == 6 and max(batches) <= 2  # every accepted record was sent
    assert sum(processor.exported.values()) == 6


def test_failed_exports_are_counted_and_shutdown_flushes_at_once() -> None:
    processor = SdkLogsProcessor(lambda body, timeout: "HTTP 400", RESOURCE, schedule_delay=10)
    for _ in range(3):
        processor.emit(_event("TCP_SEND_RST"))
    processor.shutdown()  # sends the partial batch now, not in 10 s
    assert processor.dropped[("TCP_SEND_RST", "export_failed")] == 3
    assert processor.last_error == "HTTP 400"
    assert not processor.emit(_event())  # closed: refused and counted
    assert processor.dropped[("PACKETLOSS", "queue_full")] == 1


def test_the_export_deadline_reaches_the_sender() -> None:
    timeouts: list[float] = []
    processor = SdkLogsProcessor(lambda body, timeout: timeouts.append(timeout) or "",
                                 RESOURCE, export_timeout=2.5)
    processor.emit(_event())
    processor.shutdown()
    assert timeouts == [2.5]
