"""The node API's ring of recent DNS failure events: bounds, counted drops, pods that go."""

from __future__ import annotations

import pytest

from otel_netreceiver.events.collector import _tee
from otel_netreceiver.events.model import Endpoint, Event
from otel_netreceiver.events.recent import DnsEvidenceEvent, RecentDnsEvents, from_event
from otel_netreceiver.model import attrs

S = 10**9
NOW = 1_800_000_000 * S
CLIENT, SERVER = Endpoint("10.251.61.2", 40001), Endpoint("10.251.62.2", 53)


def _timeout(uid: str, sent: int, name: str = "x.test") -> DnsEvidenceEvent:
    return DnsEvidenceEvent("timeout", uid, CLIENT, SERVER, name, sent, 0, 5 * S)


def _event(name: str, uid: str | None, at: int, source: Endpoint, destination: Endpoint,
           reason: str = "", **own: str) -> Event:
    pod = attrs({"netns.kind": "pod", "k8s.pod.uid": uid})
    return Event(name, 13, "WARN", at, 4026532000, pod, source, destination, reason, "", (),
                 attrs(own))


def test_each_pod_keeps_its_latest_events_and_counts_the_overwritten():
    ring = RecentDnsEvents(per_pod=3)
    for i in range(5):
        ring.add(_timeout("a", NOW + i * S, f"q{i}.test"))
    ring.add(_timeout("b", NOW, "b.test"))
    names = [e.query_name for e in ring.latest("a", NOW, NOW + 60 * S, limit=10)]
    assert names == ["q4.test", "q3.test", "q2.test"]  # newest first, the oldest two gone
    assert ring.dropped["overwritten"] == 2 and ring.kept == 6
    assert [e.query_name for e in ring.latest("b", NOW, NOW + 60 * S)] == ["b.test"]
    assert ring.latest("a", NOW, NOW + 60 * S, limit=1)[0].query_name == "q4.test"


def test_a_window_selects_by_send_or_end_time():
    ring = RecentDnsEvents()
    ring.add(_timeout("a", NOW - 100 * S, "old.test"))  # expired at NOW - 95 s
    ring.add(_timeout("a", NOW - 32 * S, "edge.test"))  # sent before, expired inside
    assert [e.query_name for e in ring.latest("a", NOW - 30 * S, NOW)] == ["edge.test"]
    assert ring.latest("nobody", 0, NOW) == []


def test_too_many_pods_evicts_the_quietest_and_counts_its_events():
    ring = RecentDnsEvents(per_pod=4, max_pods=2)
    ring.add(_timeout("a", NOW))
    ring.add(_timeout("a", NOW + S))
    ring.add(_timeout("b", NOW + 10 * S))
    ring.add(_timeout("c", NOW + 20 * S))  # a's latest is oldest: a goes
    assert ring.pods() == 2 and ring.dropped["too_many_pods"] == 2
    assert ring.latest("a", 0, NOW * 2) == [] and ring.latest("c", 0, NOW * 2)


def test_events_of_pods_that_are_gone_are_dropped():
    live = {"a", "b"}
    clock = [0.0]
    ring = RecentDnsEvents(live=lambda: live, prune_every=5.0, clock=lambda: clock[0])
    ring.add(_timeout("a", NOW))
    ring.add(_timeout("b", NOW))
    live.discard("b")
    assert ring.latest("b", 0, NOW * 2)  # not pruned yet: at most every 5 s
    clock[0] = 6.0
    assert ring.latest("b", 0, NOW * 2) == [] and ring.latest("a", 0, NOW * 2)
    assert ring.dropped["pod_gone"] == 1
    ring.forget("a")
    assert ring.pods() == 0


def test_bounds_must_be_positive():
    with pytest.raises(ValueError, match="per_pod"):
        RecentDnsEvents(per_pod=0)


def test_the_adapter_reads_a_late_answer_record():
    mono = 77 * S  # the kernel's monotonic clock: only differences mean anything
    late = _event("DNS_LATE_ANSWER", "a", NOW, SERVER, CLIENT,  # the answer: server → pod
                  "after_timeout",
                  **{"dns.query.time_ns": str(mono),
                     "dns.answer.time_ns": str(mono + 5_200_000_000),
                     "dns.question.name": "svc.shop.test", "dns.timeout.ns": str(5 * S),
                     "dns.server.received": "true"})
    e = from_event(late)
    assert e is not None and e.kind == "late_answer"
    assert (e.client, e.server) == (CLIENT, SERVER)  # swapped: the client is the pod
    assert (e.sent_unix_nano, e.answered_unix_nano) == (NOW - 5_200_000_000, NOW)
    assert e.timeout_ns == 5 * S and e.server_received is True
    assert e.late_reason == "after_timeout" and e.as_dict()["timeout_seconds"] == 5.0


def test_the_adapter_reads_a_timeout_record_and_ignores_the_rest():
    # found by the sweep 2.3 s after it left (latency.ns: sweep time minus send time)
    timeout = _event("DNS_TIMEOUT", "a", NOW, CLIENT, SERVER, "timeout",
                     **{"latency.ns": str(2_300_000_000), "dns.query.time_ns": str(9 * S),
                        "dns.timeout.ns": str(2 * S), "dns.question.name": "q.test"})
    e = from_event(timeout)
    assert e is not None and e.kind == "timeout" and e.answered_unix_nano == 0
    assert e.sent_unix_nano == NOW - 2_300_000_000 and e.server_received is None
    assert e.late_reason == ""
    assert from_event(_event("DNS_TIMEOUT", None, NOW, CLIENT, SERVER)) is None  # no pod
    assert from_event(_event("TCP_RESET", "a", NOW, CLIENT, SERVER)) is None
    no_sent = from_event(_event("DNS_TIMEOUT", "a", NOW, CLIENT, SERVER))
    assert no_sent is not None and no_sent.sent_unix_nano == NOW - 5 * S  # default timeout


def test_the_tap_sees_every_delivered_event_and_cannot_cost_the_export():
    ring = RecentDnsEvents()
    exported: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("tap bug")

    sink = _tee(exported.append, ring.observe)
    sink(_event("DNS_TIMEOUT", "a", NOW, CLIENT, SERVER))
    sink(_event("TCP_RESET", "a", NOW, CLIENT, SERVER))
    assert len(exported) == 2 and len(ring.latest("a", 0, NOW * 2)) == 1
    _tee(exported.append, broken)(_event("TCP_RESET", "a", NOW, CLIENT, SERVER))
    assert len(exported) == 3
