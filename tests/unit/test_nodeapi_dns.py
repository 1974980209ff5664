"""The "dns" part of the node API's answer: the caller's own counters and events, nothing else."""

from __future__ import annotations

import json

from otel_netreceiver.catalogue import metric
from otel_netreceiver.diagnosis.rules import RULES
from otel_netreceiver.events.model import Endpoint
from otel_netreceiver.events.recent import DnsEvidenceEvent, RecentDnsEvents
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Point, attrs
from otel_netreceiver.nodeapi.callers import Caller
from otel_netreceiver.nodeapi.correlate import answer, parse_ask
from otel_netreceiver.nodeapi.dns import METRICS, DnsEvidence, counts, probe_off_reason

S = 10**9
NOW = 1_800_000_000 * S
A, B = Caller("pod", "uid-a", "web-a", "shop"), Caller("pod", "uid-b", "web-b", "shop")
Q, R, T, L = (metric(name) for name in METRICS)


def _pod(uid: str, *parts: dict[str, str]) -> dict[str, str]:
    out = {"k8s.pod.uid": uid, "netns.kind": "pod", "k8s.pod.name": f"web-{uid[-1]}"}
    for part in parts:
        out.update(part)
    return out


def _points(uid: str, n: int) -> list[Point]:
    """A pod's client counters (n times a base), and a server-role row it also has."""
    cluster = {"dns.resolver.class": "cluster_dns", "network.transport": "udp"}
    client = {"dns.role": "client", **cluster}
    return [
        Point(Q, attrs(_pod(uid, client, {"dns.question.type": "A"})), 4 * n),
        Point(Q, attrs(_pod(uid, client, {"dns.question.type": "AAAA",
                                          "dns.resolver.class": "amazon"})), n),
        Point(Q, attrs(_pod(uid, cluster, {"dns.role": "server",
                                           "dns.question.type": "A"})), 100 * n),
        Point(R, attrs(_pod(uid, client, {"dns.response.code": "NOERROR"})), 2 * n),
        Point(R, attrs(_pod(uid, client, {"dns.response.code": "NXDOMAIN"})), n),
        Point(T, attrs(_pod(uid, {"dns.resolver.class": "cluster_dns"})), n),
        Point(L, attrs(_pod(uid, {"dns.resolver.class": "cluster_dns",
                                  "dns.late.reason": "after_timeout"})), n),
    ]


def _history() -> History:
    h = History(300, set(METRICS))
    h.record(_points("uid-a", 0) + _points("uid-b", 0), NOW - 20 * S)
    h.record(_points("uid-a", 1) + _points("uid-b", 7), NOW - S)
    return h


def test_counts_are_the_pods_client_side_deltas_by_resolver_class():
    doc = counts(_history(), "uid-a", NOW - 30 * S, NOW)
    assert (doc["queries"], doc["answered"], doc["timeouts"], doc["late_answers"]) == (5, 3, 1, 1)
    assert doc["responses"] == {"NOERROR": 2, "NXDOMAIN": 1}
    assert doc["late"] == {"after_timeout": 1}
    assert sorted(doc["by_resolver_class"]) == ["amazon", "cluster_dns"]
    assert doc["by_resolver_class"]["amazon"]["queries"] == 1
    assert doc["by_resolver_class"]["cluster_dns"]["timeouts"] == 1
    # before the counters moved, nothing
    assert counts(_history(), "uid-a", NOW - 60 * S, NOW - 10 * S)["queries"] == 0


def _late(uid: str, name: str) -> DnsEvidenceEvent:
    return DnsEvidenceEvent("late_answer", uid, Endpoint("10.251.61.2", 40000),
                            Endpoint("10.251.62.2", 53), name, NOW - 6 * S,
                            NOW - 6 * S + 5_200_000_000, 5 * S, "after_timeout", True)


def test_a_pod_gets_its_own_evidence_and_never_another_pods():
    ring = RecentDnsEvents()
    ring.add(_late("uid-a", "a-only.shop.svc"))
    ring.add(_late("uid-b", "b-secret.shop.svc"))
    part = DnsEvidence(_history(), lambda: "", ring)
    doc = part(A, NOW - 30 * S, NOW)
    assert doc["status"] == "ok" and doc["queries"] == 5
    (event,) = doc["events"]
    assert event["query_name"] == "a-only.shop.svc" and event["type"] == "late_answer"
    assert event["answered_unix_nano"] - event["sent_unix_nano"] == 5_200_000_000
    assert "b-secret" not in json.dumps(doc) and "uid-b" not in json.dumps(doc)
    assert part(B, NOW - 30 * S, NOW)["queries"] == 35  # B's own: 7 times A's


def test_probe_off_is_said_never_an_empty_answer():
    part = DnsEvidence(_history(), lambda: probe_off_reason(True, False, None), RecentDnsEvents())
    doc = part(A, NOW - 30 * S, NOW)
    assert doc["status"] == "probe_off" and "queries" not in doc
    assert doc["detail"].startswith("dns probe not enabled")
    host = part(Caller("host"), NOW - 30 * S, NOW)
    assert host["status"] == "no_pod" and "events" not in host


def test_probe_off_reasons_name_the_cause():
    assert "ebpf.enabled is false" in probe_off_reason(False, True, {"dns": ""})
    assert "does not list dns" in probe_off_reason(True, False, {"dns": ""})
    assert "not running" in probe_off_reason(True, True, None)
    assert "not loaded" in probe_off_reason(True, True, {"tcpreset": ""})
    assert "unavailable: no BTF" in probe_off_reason(True, True, {"dns": "no BTF"})
    assert probe_off_reason(True, True, {"dns": ""}) == ""


class _Nothing:
    def evaluate(self, condition, question):
        return []


def test_only_dns_questions_carry_the_dns_part():
    part = DnsEvidence(_history(), lambda: "", RecentDnsEvents())
    dns = parse_ask({"signal": "dns", "error_type": "timeout", "at_unix_nano": NOW}, NOW)
    doc = answer(dns, A, RULES, _Nothing(), "node-1", NOW, part)
    assert doc["dns"]["queries"] == 5 and doc["dns"]["status"] == "ok"
    sock = parse_ask({"signal": "socket", "error_type": "ECONNRESET"}, NOW)
    assert "dns" not in answer(sock, A, RULES, _Nothing(), "node-1", NOW, part)
    assert "dns" not in answer(dns, A, RULES, _Nothing(), "node-1", NOW)  # not wired
