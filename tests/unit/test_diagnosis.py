"""The rule table and the engine, over a history fed with real catalogue points."""

from __future__ import annotations

import pytest

from otel_netreceiver.catalogue import CATALOGUE, metric
from otel_netreceiver.diagnosis.engine import NOTHING, evaluate, verdict
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.model import Question
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Point, attrs

S = 10**9
POD = {"k8s.pod.uid": "uid-a", "k8s.pod.name": "web-a", "k8s.namespace.name": "shop",
       "netns.kind": "pod", "netns.inode": "4026532001"}
OTHER = {**POD, "k8s.pod.uid": "uid-b", "k8s.pod.name": "web-b", "netns.inode": "4026532002"}
HOST = {"netns.kind": "host", "netns.inode": "4026531840"}


def _point(name: str, value: float, labels: dict[str, str], **extra: str) -> Point:
    return Point(metric(name), attrs({**labels, **extra}), value)


def _source(before: list[Point], after: list[Point]) -> HistorySource:
    history = History(300.0, metric_names())
    history.record(before, 100 * S)
    history.record(after, 120 * S)
    return HistorySource(history)


def _ask(topic: str, pod: str = "uid-a", **kw: str) -> Question:
    return Question(topic, 90 * S, 125 * S, pod_uid=pod, **kw)


def _ena(allowance: str, value: int) -> Point:
    return _point("aws.ena.allowance.exceeded", value, {"network.interface.name": "eth0",
                                                        "aws.eni.id": "eni-1"},
                  **{"aws.ena.allowance": allowance})


def test_every_rule_reads_catalogue_metrics_and_has_a_source_and_advice():
    assert metric_names() <= set(CATALOGUE)
    for rule in RULES:
        assert rule.source and rule.advice and rule.summary, rule.id
        assert rule.severity in ("critical", "warning", "info")


def test_linklocal_growth_is_dns_throttling_at_the_eni_for_every_pod():
    source = _source([_ena("linklocal", 10)], [_ena("linklocal", 130)])
    findings = evaluate(RULES, source, _ask("dns", error_type="timeout"))
    assert verdict(findings) == "dns_throttled_at_eni"
    evidence = findings[0].evidence[0]
    assert evidence.delta == 120 and evidence.scope == "node"
    assert dict(evidence.attributes) == {"aws.ena.allowance": "linklocal",
                                         "network.interface.name": "eth0"}
    assert "NodeLocal DNSCache" in findings[0].advice
    # a host-network caller gets the node's findings too
    assert verdict(evaluate(RULES, source, _ask("dns", pod=""))) == "dns_throttled_at_eni"


def test_the_same_counters_unchanged_are_nothing_abnormal():
    points = [_ena("linklocal", 10), _point("netreceiver.udp.rcvbuf_errors", 3, POD)]
    assert verdict(evaluate(RULES, _source(points, points), _ask("dns"))) == NOTHING


def test_pod_signals_are_the_callers_own_never_another_pods():
    before = [_point("netreceiver.udp.rcvbuf_errors", 0, OTHER)]
    after = [_point("netreceiver.udp.rcvbuf_errors", 500, OTHER)]
    source = _source(before, after)
    assert evaluate(RULES, source, _ask("dns")) == []  # pod a sees nothing of b's overflow
    mine = evaluate(RULES, source, _ask("dns", pod="uid-b"))
    assert verdict(mine) == "udp_receive_buffer_overflow"
    assert evaluate(RULES, source, _ask("dns", pod="")) == []  # host callers: no pod data


def test_aggregates_strip_pod_identity():
    sent = {"tcp.reset.direction": "sent", "tcp.state": "no_socket",
            "tcp.reset.reason": "no_socket"}
    received = {"tcp.reset.direction": "received", "tcp.state": "syn_sent",
                "tcp.reset.reason": "none"}
    source = _source([_point("netreceiver.pod.tcp.resets", 0, POD, **received),
                      _point("netreceiver.pod.tcp.resets", 0, OTHER, **sent)],
                     [_point("netreceiver.pod.tcp.resets", 2, POD, **received),
                      _point("netreceiver.pod.tcp.resets", 2, OTHER, **sent)])
    findings = evaluate(RULES, source, _ask("socket", error_type="ECONNRESET"))
    assert verdict(findings) == "reset_by_peer"
    everything = repr([e.attributes for f in findings for e in f.evidence])
    assert "uid-b" not in everything and "web-b" not in everything
    aggregate = [e for e in findings[0].evidence if e.scope == "all"]
    assert dict(aggregate[0].attributes)["tcp.reset.reason"] == "no_socket"


@pytest.mark.parametrize(("error_type", "expected"), [("ECONNRESET", "reset_by_peer"),
                                                      ("host_not_found", NOTHING)])
def test_rules_apply_only_to_their_error_types(error_type, expected):
    received = {"tcp.reset.direction": "received", "tcp.state": "established",
                "tcp.reset.reason": "none"}
    source = _source([_point("netreceiver.pod.tcp.resets", 0, POD, **received)],
                     [_point("netreceiver.pod.tcp.resets", 1, POD, **received)])
    assert verdict(evaluate(RULES, source, _ask("socket", error_type=error_type))) == expected


def test_findings_are_ordered_by_severity():
    source = _source([_point("netreceiver.udp.rcvbuf_errors", 0, POD), _ena("conntrack", 0)],
                     [_point("netreceiver.udp.rcvbuf_errors", 9, POD), _ena("conntrack", 4)])
    findings = evaluate(RULES, source, _ask("dns"))
    assert [f.verdict for f in findings] == ["conntrack_exhausted",
                                             "udp_receive_buffer_overflow"]


def test_routine_drop_reasons_are_not_a_finding():
    def drops(reason: str, value: int) -> Point:
        return _point("netreceiver.pod.packet.drops", value, POD, **{"drop.reason": reason})

    quiet = _source([drops("NOT_SPECIFIED", 0)], [drops("NOT_SPECIFIED", 6)])
    assert evaluate(RULES, quiet, _ask("socket", error_type="ECONNRESET")) == []
    loud = _source([drops("TCP_CSUM", 0)], [drops("TCP_CSUM", 6)])
    assert verdict(evaluate(RULES, loud, _ask("socket"))) == "packets_dropped"
    firewall = _source([drops("NETFILTER_DROP", 0)], [drops("NETFILTER_DROP", 6)])
    assert [f.verdict for f in evaluate(RULES, firewall, _ask("socket"))] == ["firewall_drops"]
