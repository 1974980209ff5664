"""The node's DNS evidence in the answer, and the sentence explain() makes of it (pure)."""

from __future__ import annotations

import json
import time

import pytest
from otel_netreceiver_sdk.answer import AnswerError, parse_answer
from otel_netreceiver_sdk.client import CorrelationResult
from otel_netreceiver_sdk.dns_evidence import dns_sentence, parse_dns
from otel_netreceiver_sdk.errors import Classification, Observation
from otel_netreceiver_sdk.explain import build_explanation, event_attributes
from otel_netreceiver_sdk.identity import K8sIdentity
from sdk_support_agent import THROTTLED

S = 10**9
SENT = 1_764_620_000 * S + 123_000_000  # 20:13:20.123 UTC
SERVER = {"address": "10.251.62.2", "port": 53}


def _late(sent: int = SENT, reason: str = "after_timeout") -> dict:
    return {"type": "late_answer", "query_name": "late.shop.svc", "server": SERVER,
            "sent_unix_nano": sent, "answered_unix_nano": sent + 5_200_000_000,
            "timeout_seconds": 5.0, "late_reason": reason, "server_received": True}


def _timeout(received: bool | None) -> dict:
    return {"type": "timeout", "query_name": "drop.shop.svc", "server": SERVER,
            "sent_unix_nano": SENT, "answered_unix_nano": None, "timeout_seconds": 5.0,
            "late_reason": "", "server_received": received}


def _dns(events: list[dict], status: str = "ok", **counts: object) -> dict:
    base = {"status": status, "detail": "", "queries": 4, "answered": 2, "timeouts": 2,
            "late_answers": 1, "responses": {"NOERROR": 1, "NXDOMAIN": 1},
            "late": {"after_timeout": 1}, "by_resolver_class": {}, "events": events}
    return {**base, **counts}


def test_a_late_answer_is_told_with_its_times_and_the_timeout():
    own_timeout = {**_timeout(True), "query_name": "late.shop.svc"}  # the same query's
    text = dns_sentence(parse_dns(_dns([own_timeout, _late()])), SENT + 5 * S)
    assert text == ("the query for late.shop.svc left the pod at 20:13:20.123 UTC, the "
                    "resolver pod (10.251.62.2:53) answered at T+5.2 s, after your 5 s timeout")
    closed = dns_sentence(parse_dns(_dns([_late(reason="no_socket")])), SENT)
    assert closed.endswith("(the socket was already closed)")


def test_the_query_nearest_the_error_is_told_with_its_late_answer():
    older = _late(SENT - 60 * S)
    older["query_name"] = "older.shop.svc"
    other = {**_timeout(None), "sent_unix_nano": SENT + 20 * S}  # another, later query
    own = {**_timeout(None), "query_name": "late.shop.svc", "sent_unix_nano": SENT + 30_000}
    events = [other, older, own, _late()]
    text = dns_sentence(parse_dns(_dns(events)), SENT + 5 * S)
    assert "late.shop.svc" in text and "answered at T+5.2 s" in text  # own's late answer
    assert "older.shop.svc" in dns_sentence(parse_dns(_dns(events)), SENT - 55 * S)
    text = dns_sentence(parse_dns(_dns(events)), SENT + 25 * S)
    assert "drop.shop.svc" in text and "no answer within 5 s" in text
    # a late answer to another query of the same name (a retry, seconds apart) is not its
    retry = {**_late(), "sent_unix_nano": SENT + 2 * S}
    text = dns_sentence(parse_dns(_dns([own, retry])), SENT + 5 * S)
    assert "no answer within 5 s" in text


@pytest.mark.parametrize(("received", "tail"), [
    (True, "(the resolver pod (10.251.62.2:53) received it)"),
    (False, "(the resolver pod (10.251.62.2:53) did not receive it)"),
    (None, "(the node did not see whether the resolver pod (10.251.62.2:53) received it)")])
def test_a_timeout_says_whether_the_resolver_pod_got_the_query(received, tail):
    text = dns_sentence(parse_dns(_dns([_timeout(received)])), SENT + 5 * S)
    assert text == ("the query for drop.shop.svc left the pod at 20:13:20.123 UTC; no answer "
                    f"within 5 s {tail}")


def test_without_events_the_counts_are_told_and_an_off_probe_is_said():
    text = dns_sentence(parse_dns(_dns([])), SENT)
    assert text == ("this pod sent 4 DNS queries in the window: 2 answered (NOERROR 1, "
                    "NXDOMAIN 1), 2 timed out, 1 answered late (after_timeout 1)")
    off = parse_dns({"status": "probe_off", "detail": "dns probe not enabled (x)",
                     "events": []})
    assert dns_sentence(off, SENT) == "the node does not count DNS: dns probe not enabled (x)"
    assert dns_sentence(parse_dns({"status": "no_pod", "detail": "host"}), SENT) == ""
    assert dns_sentence(None, SENT) == ""


def test_a_wrong_dns_part_is_an_answer_error_naming_the_field():
    with pytest.raises(AnswerError, match=r"dns\.queries: expected a number"):
        parse_answer(json.dumps({**THROTTLED, "dns": _dns([], queries="many")}).encode())
    with pytest.raises(AnswerError, match=r"dns\.events\[0\]: expected an object"):
        parse_answer(json.dumps({**THROTTLED, "dns": _dns(["x"])}).encode())
    assert parse_answer(json.dumps(THROTTLED).encode()).dns is None  # older agents


def test_explain_names_the_late_answer_for_a_failed_lookup():
    doc = {**THROTTLED, "verdict": "nothing_abnormal", "findings": [], "dns": _dns([_late()])}
    answer = parse_answer(json.dumps(doc).encode())
    obs = Observation("dns", "timeout", "lookup", "udp", SENT + 5 * S, 5.0, True)
    c = Classification("dns", "timeout", None, "socket.gaierror", obs)
    e = build_explanation(c, CorrelationResult("ok", "", answer), None, K8sIdentity())
    assert "answered at T+5.2 s, after your 5 s timeout" in e.summary
    assert event_attributes(e)["netreceiver.dns.evidence"] == e.dns_evidence
    # no observation (the wrappers were not installed): the error is "now", so the newest
    # query's late answer is told, not the oldest event's
    old = {**_timeout(None), "sent_unix_nano": SENT - 3600 * S}
    now = {**_late(), "sent_unix_nano": time.time_ns() - 6 * S,
           "answered_unix_nano": time.time_ns() - S}
    doc = {**doc, "dns": _dns([old, now])}
    bare = Classification("dns", "try_again", None, "socket.gaierror")
    e = build_explanation(bare, CorrelationResult("ok", "", parse_answer(
        json.dumps(doc).encode())), None, K8sIdentity())
    assert "answered at T+5.0 s" in e.dns_evidence
    sock = Classification("socket", "ECONNRESET", 104, "ConnectionResetError")
    assert build_explanation(sock, CorrelationResult("ok", "", answer), None,
                             K8sIdentity()).dns_evidence == ""
