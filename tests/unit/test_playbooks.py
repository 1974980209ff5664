"""The node playbooks whose faults a test machine cannot produce on demand (ENA allowances, a
100 ms softirq, PAWS behind a NAT, time-waits that fall while established connections rise):
the rules over a history fed with catalogue points in the shapes the seeds describe, each
also quiet on the healthy shape."""

from __future__ import annotations

from otel_netreceiver.catalogue import metric
from otel_netreceiver.diagnosis.engine import evaluate
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.model import Question
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.model import HistogramValue, Point, attrs

S = 10**9
POD = {"k8s.pod.uid": "uid-a", "k8s.pod.name": "ingress", "k8s.namespace.name": "edge",
       "netns.kind": "pod", "netns.inode": "4026532001"}


def _p(name: str, value: object, **extra: str) -> Point:
    labels = {} if metric(name).source in ("ena", "ebpf", "nodenet") and "pod" not in name \
        else POD
    return Point(metric(name), attrs({**labels, **extra}), value)


def _verdicts(before: list[Point], after: list[Point], pod: str = "uid-a") -> list[str]:
    history = History(300.0, metric_names())
    history.record(before, 100 * S)
    history.record(after, 120 * S)
    question = Question("", 90 * S, 125 * S, pod_uid=pod)
    return [f.verdict for f in evaluate(RULES, HistorySource(history), question)]


def _slow(rx: int, tx: int, established: int, time_wait: int) -> list[Point]:
    return [_p("netreceiver.tcp.queued", rx, **{"network.io.direction": "receive"}),
            _p("netreceiver.tcp.queued", tx, **{"network.io.direction": "transmit"}),
            _p("netreceiver.tcp.connections", established, **{"tcp.state": "established"}),
            _p("netreceiver.tcp.connections", time_wait, **{"tcp.state": "time_wait"})]


def test_case_4_queues_up_time_waits_down_established_up_is_the_slow_process():
    found = _verdicts(_slow(0, 0, 200, 900), _slow(300_000, 90_000, 260, 400))
    assert "process_not_keeping_up" in found
    # the same queues with time-waits rising is busy, not stalled: no pattern
    assert "process_not_keeping_up" not in _verdicts(_slow(0, 0, 200, 400),
                                                     _slow(300_000, 90_000, 260, 900))
    assert "process_not_keeping_up" not in _verdicts(_slow(0, 0, 200, 900),
                                                     _slow(0, 0, 260, 400))


def _softirq(slow: int) -> Point:
    bounds = (0.001, 0.01, 0.1, 1.0)
    return _p("netreceiver.softirq.latency", HistogramValue(bounds, (100, 0, 0, slow, 0),
                                                            0.1 + slow * 0.5, 100 + slow),
              **{"softirq.vector": "net_rx", "softirq.phase": "schedule"})


def test_a_softirq_p99_beyond_10_ms_is_jitter_and_a_fast_one_is_not():
    assert "softirq_delay" in _verdicts([_softirq(0)], [_softirq(50)])
    assert "softirq_delay" not in _verdicts([_softirq(0)], [_softirq(0)])


def test_paws_rejections_are_named():
    before = [_p("netreceiver.tcp.paws_estab", 3)]
    assert "paws_or_syn_recv_ack_skipped" in _verdicts(before, [_p("netreceiver.tcp.paws_estab",
                                                                   9)])
    assert _verdicts(before, before) == []


def _ena(allowance: str, value: int) -> Point:
    return Point(metric("aws.ena.allowance.exceeded"),
                 attrs({"network.interface.name": "eth0", "aws.eni.id": "eni-1",
                        "aws.ena.allowance": allowance}), value)


def test_each_ena_allowance_has_its_own_verdict():
    expected = {"pps": "eni_pps_allowance_exceeded", "bw_in": "eni_inbound_bandwidth_exceeded",
                "bw_out": "eni_outbound_bandwidth_exceeded",
                "linklocal": "dns_throttled_at_eni", "conntrack": "conntrack_exhausted"}
    quiet = [_ena(a, 5) for a in expected]
    for allowance, verdict in expected.items():
        after = [_ena(a, 9 if a == allowance else 5) for a in expected]
        assert _verdicts(quiet, after) == [verdict], allowance
    assert _verdicts(quiet, quiet) == []


def test_every_customer_case_with_a_metric_is_a_named_pattern():
    cases = {r.pattern.split(":")[0] for r in RULES if r.pattern}
    assert cases == {"case 1", "case 2", "case 4"}  # case 3: no virtio latency metric yet
    topics = {r.id: r.topics for r in RULES}
    assert topics["jitter.cpu_throttled"] == {"node"} and "dns" in topics["dns.coredns_udp_errors"]
