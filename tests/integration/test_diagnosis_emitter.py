"""The agent's periodic diagnosis: a gauge per current finding, new findings as OTLP logs.

The history is fed with catalogue points directly (the kernel side of each playbook is
tested in the playbook tests); the log records go to a real OTLP/HTTP sink.
"""

from __future__ import annotations

import time

from otel_netreceiver.catalogue import metric
from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.diagnosis.emitter import EVENT_NAME, DiagnosisCollector
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Point, attrs
from tests.support.otlp_sink import OtlpHttpSink, log_records

S = 10**9
POD = attrs({"k8s.pod.uid": "uid-1", "k8s.pod.name": "dns-client", "k8s.namespace.name": "shop",
             "netns.kind": "pod", "netns.inode": "4026532001"})


def _overflow(history: History, t: int, value: int) -> None:
    history.record([Point(metric("netreceiver.udp.rcvbuf_errors"), POD, value)], t * S)


def test_findings_become_a_gauge_and_one_log_record_each():
    sink = OtlpHttpSink()
    now = [1000 * S]
    history = History(300, metric_names(), clock=lambda: now[0])
    source = HistorySource(history)
    collector = DiagnosisCollector(RULES, source, source, 60,
                                   OtlpConfig(endpoint=sink.endpoint, compression="none",
                                              timeout=2.0), {"service.name": "t"},
                                   clock=lambda: now[0])
    try:
        _overflow(history, 990, 0)
        assert collector.collect().points == ()  # nothing moved yet
        _overflow(history, 995, 40)
        first = collector.collect()
        [point] = first.points
        labels = dict(point.attributes)
        assert labels["diagnosis.verdict"] == "udp_receive_buffer_overflow"
        assert labels["k8s.pod.name"] == "dns-client" and point.value == 1
        now[0] += 5 * S
        assert len(collector.collect().points) == 1  # still holds: no second record
        deadline = time.monotonic() + 10
        while not sink.log_requests and time.monotonic() < deadline:
            time.sleep(0.1)
        records = [r for req in sink.log_requests for r in log_records(req)]
        assert len(records) == 1
        record = {kv.key: kv.value.string_value for kv in records[0].attributes}
        assert record["event.name"] == EVENT_NAME
        assert record["diagnosis.verdict"] == "udp_receive_buffer_overflow"
        assert record["k8s.pod.name"] == "dns-client"
        assert '"delta": 40.0' in record["diagnosis.evidence"]
        assert records[0].severity_text == "WARN"
        now[0] += 120 * S  # the overflow left the 60 s window
        _overflow(history, now[0] // S, 40)
        assert collector.collect().points == ()
    finally:
        collector.close()
        sink.close()
