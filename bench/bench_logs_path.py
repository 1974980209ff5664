"""Cost per event record of the OTLP logs path: the OpenTelemetry SDK against the hand-written.

Both paths take the same decoded events to encoded ExportLogsServiceRequest bytes
in batches of 512, with a sender that discards the bytes (the network is not what
is compared). The baseline is what the previous hand-written processor did per
record (a deque in, a deque out, the agent's encoder over the batch); the SDK path
is events/sdk_logs.py (LoggerProvider.emit → BatchLogRecordProcessor's worker →
the encoder over the SDK's records). Process CPU time, so the SDK's worker thread
counts; each path runs in this same process, baseline first.

    python bench/bench_logs_path.py [--records 20000]
"""

from __future__ import annotations

import argparse
import time
from collections import deque

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.events.model import decode_record, to_event
from otel_netreceiver.events.otlp_logs import encode_logs
from otel_netreceiver.events.sdk_logs import SdkLogsProcessor
from tests.unit.test_events_pure import NAMES, _record, _sockaddr

RESOURCE = {"service.name": "otel-netreceiver", "service.instance.id": "node-1",
            "k8s.node.name": "node-1", "cloud.region": "eu-west-1"}
BATCH = 512


def _events(n: int) -> list:  # type: ignore[type-arg]
    one = to_event(decode_record(_record("TCP_SEND_RST", reason=2, state=1,
                                         saddr=_sockaddr("10.0.0.1", 80),
                                         daddr=_sockaddr("10.0.0.2", 40000))), NAMES, 0)
    return [one] * n


def hand_written(events: list) -> tuple[float, int]:  # type: ignore[type-arg]
    queue: deque = deque()  # type: ignore[type-arg]
    size, started = 0, time.process_time()
    for event in events:
        queue.append(event)
        if len(queue) >= BATCH:
            batch = [queue.popleft() for _ in range(BATCH)]
            size += len(encode_logs(batch, RESOURCE))
    if queue:
        size += len(encode_logs(list(queue), RESOURCE))
    return time.process_time() - started, size


def sdk(events: list) -> tuple[float, int]:  # type: ignore[type-arg]
    sizes: list[int] = []
    started = time.process_time()
    processor = SdkLogsProcessor(lambda body, timeout: sizes.append(len(body)) or "", RESOURCE,
                                 max_queue_size=len(events) + 1, max_export_batch_size=BATCH)
    for event in events:
        processor.emit(event)
    processor.shutdown()
    elapsed = time.process_time() - started
    assert sum(processor.exported.values()) == len(events), processor.dropped
    return elapsed, sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    args = parser.parse_args()
    events = _events(args.records)
    base_s, base_bytes = hand_written(events)
    sdk_s, sdk_bytes = sdk(events)
    n = args.records
    print(f"records: {n}, batches of {BATCH}, process CPU")
    print(f"baseline  hand-written queue + encoder: {base_s / n * 1e6:6.2f} us/record "
          f"{base_bytes:,} bytes")
    print(f"sdk       LoggerProvider + BatchLogRecordProcessor + encoder: "
          f"{sdk_s / n * 1e6:6.2f} us/record {sdk_bytes:,} bytes")
    print(f"ratio     sdk / baseline: {sdk_s / base_s:.2f}x")


if __name__ == "__main__":
    main()
