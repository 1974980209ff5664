"""The DNS and peer playbooks over synthetic windows: each fault shape fires with the pods and
numbers named, and the clean shape of the same traffic gives no DNS or peer finding.

The windows are what the dns and peers probes report (catalogue points, one collection
before and one after); metrics other branches add (ndots expansions, TCP fallbacks, the
per-interface link-local peak, linklocal.answered_by) are built from stand-in definitions
until the catalogue has them, and the rules that read them are taken from the module's
table directly (rules.py registers them once they are catalogued).
"""

from __future__ import annotations

from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.diagnosis.engine import diagnose, evaluate
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.model import Finding, Question
from otel_netreceiver.diagnosis.playbooks_dns import DNS_EBPF_RULES, PEAK_METRIC
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Kind, MetricDef, Point, attrs

S = 10**9
NODE = frozenset({"dns_throttled_at_eni", "dns_timeouts", "dns_timeouts_resolver_not_answering",
                  "dns_timeouts_lost_before_resolver", "dns_answer_after_client_timeout",
                  "dns_server_failure", "dns_tcp_fallback_failed",
                  "dns_search_path_amplification", "eni_outbound_bandwidth_exceeded",
                  "eni_inbound_bandwidth_exceeded", "eni_pps_allowance_exceeded",
                  "udp_no_listener"})
STAND_INS = {  # contract names of the dns-events and linklocal branches
    "netreceiver.pod.dns.ndots_expansions": Kind.COUNTER,
    "netreceiver.pod.dns.tcp_fallbacks": Kind.COUNTER,
    PEAK_METRIC: Kind.GAUGE,
}
RULE_TABLE = RULES + tuple(r for r in DNS_EBPF_RULES if r not in RULES)


def _pod(name: str, uid: str, namespace: str = "shop") -> dict[str, str]:
    return {"k8s.pod.uid": uid, "k8s.pod.name": name, "k8s.namespace.name": namespace,
            "netns.kind": "pod", "netns.inode": str(4026532000 + len(uid))}


WEB, API, BATCH = _pod("web", "u-web"), _pod("api", "u-api"), _pod("batch", "u-batch", "jobs")
COREDNS = _pod("coredns-1", "u-dns", "kube-system")
PODS = (WEB, API, BATCH, COREDNS)


def _def(name: str) -> MetricDef:
    if name in CATALOGUE:
        return CATALOGUE[name]
    return MetricDef(name, STAND_INS[name], "{packet}", "stand-in until catalogued")


def p(name: str, value: float, labels: dict[str, str] | None = None, **extra: str) -> Point:
    return Point(_def(name), attrs({**(labels or {}), **extra}), value)


def dns(name: str, value: float, labels: dict[str, str], role: str = "client",
        **extra: str) -> Point:
    return p(f"netreceiver.pod.dns.{name}", value, labels,
             **{"dns.role": role, "dns.resolver.class": "cluster_dns", **extra})


def _history(before: list[Point], after: list[Point]) -> History:
    history = History(300.0, metric_names() | set(STAND_INS))
    history.record(before, 100 * S)
    history.record(after, 160 * S)
    return history


class _Pods:
    def pods(self, question: Question) -> list:
        return [attrs({k: v for k, v in pod.items() if k.startswith("k8s.")}) for pod in PODS]


def run(before: list[Point], after: list[Point], namespace: str = "") -> list[Finding]:
    source = HistorySource(_history(before, after))
    return diagnose(RULE_TABLE, source, _Pods(), Question("", 90 * S, 165 * S, every_pod=True,
                                                          namespace=namespace))


def only(findings: list[Finding], verdict: str) -> Finding:
    found = [f for f in findings if f.verdict == verdict]
    assert len(found) == 1, [(f.verdict, f.subject) for f in findings]
    return found[0]


def names(finding: Finding) -> list[str]:
    return [dict(r)["k8s.pod.name"] for r in finding.related]


def _ena(allowance: str, value: int, iface: str = "ens5") -> Point:
    return p("aws.ena.allowance.exceeded", value, {"network.interface.name": iface,
                                                   "aws.eni.id": "eni-1",
                                                   "aws.ena.allowance": allowance})


def _linklocal(pod: dict[str, str], value: int, service: str = "amazon_dns",
               answered_by: str = "eni") -> Point:
    return p("netreceiver.pod.linklocal.packets", value, pod,
             **{"linklocal.service": service, "linklocal.answered_by": answered_by})


def test_linklocal_drops_name_the_top_eni_pods_with_share_and_the_peak(monkeypatch) -> None:
    # the peak is read once the linklocal branch catalogues it: here, as it will be
    monkeypatch.setitem(CATALOGUE, PEAK_METRIC, _def(PEAK_METRIC))
    before = [_ena("linklocal", 0), _linklocal(WEB, 0), _linklocal(API, 0),
              _linklocal(BATCH, 0, answered_by="node"), p(PEAK_METRIC, 300, **{
                  "network.interface.name": "ens5"})]
    after = [_ena("linklocal", 900), _linklocal(WEB, 60_000), _linklocal(API, 20_000),
             _linklocal(BATCH, 500_000, answered_by="node"),  # NodeLocal DNSCache: not the ENI
             p(PEAK_METRIC, 1480, **{"network.interface.name": "ens5"})]
    finding = only(run(before, after), "dns_throttled_at_eni")
    assert not finding.subject and names(finding) == ["web", "api"]
    assert "shop/web 60,000 packets (75%, 1,000/s; amazon_dns 100%)" in finding.summary
    assert "shop/api 20,000 packets (25%" in finding.summary
    assert "on ens5: 1,480 packets/s, over the 1024 allowance" in finding.summary
    peak = [e for e in finding.evidence if e.signal == PEAK_METRIC]
    assert [(e.delta, e.op) for e in peak] == [(1480, "peak")]
    assert "batch" not in finding.summary


def test_linklocal_traffic_without_drops_is_no_finding() -> None:
    before = [_ena("linklocal", 5), _linklocal(WEB, 0), p(PEAK_METRIC, 300, **{
        "network.interface.name": "ens5"})]
    after = [_ena("linklocal", 5), _linklocal(WEB, 60_000), p(PEAK_METRIC, 900, **{
        "network.interface.name": "ens5"})]
    assert not {f.verdict for f in run(before, after)} & NODE


def _lookups(client: int, answered: int, timeouts: int, server_q: int, server_a: int,
             late: int = 0) -> list[Point]:
    return [dns("queries", client, WEB, **{"dns.question.type": "A",
                                           "network.transport": "udp"}),
            dns("responses", answered, WEB, **{"dns.response.code": "NOERROR",
                                               "network.transport": "udp"}),
            p("netreceiver.pod.dns.timeouts", timeouts, WEB,
              **{"dns.resolver.class": "cluster_dns"}),
            p("netreceiver.pod.dns.late_answers", late, WEB,
              **{"dns.resolver.class": "cluster_dns", "dns.late.reason": "after_timeout"}),
            dns("queries", server_q, COREDNS, "server", **{"dns.question.type": "A",
                                                           "network.transport": "udp"}),
            dns("responses", server_a, COREDNS, "server",
                **{"dns.response.code": "NOERROR", "network.transport": "udp"})]


ZERO = _lookups(0, 0, 0, 0, 0)


def test_a_resolver_that_received_and_did_not_answer_is_the_resolver_side() -> None:
    found = run(ZERO, _lookups(500, 380, 120, 500, 380))
    finding = only(found, "dns_timeouts_resolver_not_answering")
    assert dict(finding.subject)["k8s.pod.name"] == "web" and names(finding) == ["coredns-1"]
    assert "120 queries timed out" in finding.summary
    assert "kube-system/coredns-1 received 500, answered 380" in finding.summary


def test_diagnose_of_one_namespace_still_sees_the_resolver_in_kube_system() -> None:
    found = run(ZERO, _lookups(500, 380, 120, 500, 380), namespace="shop")
    assert names(only(found, "dns_timeouts_resolver_not_answering")) == ["coredns-1"]


def test_timeouts_to_the_amazon_resolver_point_at_the_eni_not_at_a_pod() -> None:
    def amazon(timeouts: int, received: int, answered: int) -> list[Point]:
        # a CoreDNS in view leaving queries unanswered: not the resolver the pod asked
        return [*_lookups(0, 0, 0, received, answered)[4:],
                p("netreceiver.pod.dns.timeouts", timeouts, WEB,
                  **{"dns.resolver.class": "amazon"})]

    finding = only(run(amazon(0, 0, 0), amazon(7, 500, 380)), "dns_timeouts")
    assert "Amazon resolver" in finding.summary and not finding.related


def test_a_resolver_that_answered_everything_it_got_puts_the_loss_on_the_path() -> None:
    # 120 of the pod's queries were dropped on the way (nftables): the resolver saw 380
    found = run(ZERO, _lookups(500, 380, 120, 380, 380))
    finding = only(found, "dns_timeouts_lost_before_resolver")
    assert "answered every query they received" in finding.summary
    assert "coredns-1 received 380, answered 380" in finding.summary


def test_timeouts_with_no_resolver_in_view_say_so() -> None:
    found = run(ZERO, _lookups(500, 380, 120, 0, 0))
    finding = only(found, "dns_timeouts")
    assert "No resolver pod in view" in finding.summary and not finding.related


def test_answers_after_the_client_timeout_are_case_1_not_lost_queries() -> None:
    found = run(ZERO, _lookups(500, 500, 40, 500, 500, late=40))
    finding = only(found, "dns_answer_after_client_timeout")
    assert finding.rule == "dns.late_answers" and "case 1" in RULE_PATTERN["dns.late_answers"]
    late = [e for e in finding.evidence if e.signal.endswith("late_answers")]
    assert late[0].delta == 40
    assert dict(late[0].attributes)["dns.late.reason"] == "after_timeout"
    assert not {f.verdict for f in found} & {"dns_timeouts", "dns_timeouts_lost_before_resolver"}


RULE_PATTERN = {r.id: r.pattern for r in RULE_TABLE}


def _rcodes(servfail: int, refused: int, labels: dict[str, str], role: str) -> list[Point]:
    return [dns("responses", n, labels, role, **{"dns.response.code": code,
                                                 "network.transport": "udp"})
            for code, n in (("SERVFAIL", servfail), ("REFUSED", refused))]


def test_servfail_from_upstream_names_the_resolver_that_sent_it() -> None:
    before = _rcodes(0, 0, WEB, "client") + _rcodes(0, 0, COREDNS, "server")
    after = _rcodes(30, 2, WEB, "client") + _rcodes(45, 0, COREDNS, "server")
    finding = only(run(before, after), "dns_server_failure")
    assert dict(finding.subject)["k8s.pod.name"] == "web"
    assert "32 SERVFAIL/REFUSED answers" in finding.summary
    assert "kube-system/coredns-1 sent 45" in finding.summary and names(finding) == ["coredns-1"]


def test_ndots_fan_out_and_failed_tcp_fallbacks_are_findings_of_their_pod() -> None:
    def shape(expansions: int, failed: int, ok: int) -> list[Point]:
        cls = {"dns.resolver.class": "cluster_dns"}
        return [p("netreceiver.pod.dns.ndots_expansions", expansions, API, **cls),
                p("netreceiver.pod.dns.tcp_fallbacks", failed, API,
                  **cls, **{"dns.fallback.result": "failed"}),
                p("netreceiver.pod.dns.tcp_fallbacks", ok, API,
                  **cls, **{"dns.fallback.result": "ok"})]

    found = run(shape(0, 0, 0), shape(250, 3, 10))
    assert dict(only(found, "dns_search_path_amplification").subject)["k8s.pod.name"] == "api"
    assert dict(only(found, "dns_tcp_fallback_failed").subject)["k8s.pod.name"] == "api"
    # successful fallbacks alone are the protocol working: no finding
    assert "dns_tcp_fallback_failed" not in {f.verdict for f in run(shape(0, 0, 0),
                                                                     shape(0, 0, 10))}


def test_clean_dns_traffic_gives_no_dns_finding() -> None:
    before = [*ZERO, *_rcodes(0, 0, WEB, "client"), _ena("linklocal", 7)]
    after = [*_lookups(5000, 5000, 0, 5000, 5000), *_rcodes(0, 0, WEB, "client"),
             _ena("linklocal", 7)]
    assert not {f.verdict for f in run(before, after)} & NODE


def _peer(pod: dict[str, str], metric: str, value: int, cls: str, direction: str,
          zone: str = "") -> Point:
    return p(f"netreceiver.pod.peer.{metric}", value, pod,
             **{"peer.class": cls, "peer.zone": zone, "network.io.direction": direction})


def _traffic(scale: int) -> list[Point]:
    return [_peer(BATCH, "bytes", 90 * scale, "other_zone", "transmit", "us-east-1b"),
            _peer(BATCH, "bytes", 30 * scale, "internet", "transmit"),
            _peer(WEB, "bytes", 40 * scale, "same_zone", "transmit", "us-east-1a"),
            _peer(API, "bytes", 500 * scale, "same_node", "transmit"),  # never on the ENA
            _peer(WEB, "bytes", 7 * scale, "internet", "receive")]


def test_bandwidth_allowance_names_the_pods_that_sent_the_bytes_and_where_to() -> None:
    found = run([*_traffic(0), _ena("bw_out", 0)], [*_traffic(10**7), _ena("bw_out", 640)])
    finding = only(found, "eni_outbound_bandwidth_exceeded")
    assert names(finding) == ["batch", "web"]
    assert "jobs/batch 1.2 GB (75%, 20 MB/s; other_zone 75%, internet 25%)" in finding.summary
    assert "shop/web 400 MB (25%" in finding.summary and "api" not in finding.summary


def test_pps_allowance_counts_packets_both_ways_and_traffic_alone_is_quiet() -> None:
    def packets(scale: int) -> list[Point]:
        return [_peer(WEB, "packets", 3 * scale, "internet", "receive"),
                _peer(API, "packets", scale, "other_zone", "transmit", "us-east-1c")]

    finding = only(run([*packets(0), _ena("pps", 0)], [*packets(100_000), _ena("pps", 50)]),
                   "eni_pps_allowance_exceeded")
    assert names(finding) == ["web", "api"] and "shop/web 300,000 packets (75%" in finding.summary
    quiet = run([*packets(0), *_traffic(0), _ena("pps", 9), _ena("bw_out", 9)],
                [*packets(100_000), *_traffic(10**7), _ena("pps", 9), _ena("bw_out", 9)])
    assert not {f.verdict for f in quiet} & NODE


def test_an_applications_own_question_never_names_other_pods() -> None:
    history = _history([*ZERO, _ena("linklocal", 0), _linklocal(API, 0)],
                       [*_lookups(500, 380, 120, 500, 380), _ena("linklocal", 50),
                        _linklocal(API, 9000)])
    asked = evaluate(RULE_TABLE, HistorySource(history),
                     Question("dns", 90 * S, 165 * S, pod_uid="u-web"))
    text = repr([(f.summary, f.related, f.evidence) for f in asked])
    assert {"dns_throttled_at_eni", "dns_timeouts"} <= {f.verdict for f in asked}
    assert "coredns" not in text and "u-api" not in text and "api" not in text.replace(
        "api_", "")


def test_case_1_seen_by_both_probes_is_one_finding_with_both_evidences() -> None:
    def udp(no_ports: int, dropped: int, late: int) -> list[Point]:
        return [p("netreceiver.udp.no_ports", no_ports, WEB),
                p("netreceiver.packet.drop_sites", dropped, None, **{
                    "drop.location": "__udp4_lib_rcv", "drop.reason": "NO_SOCKET"}),
                p("netreceiver.pod.dns.late_answers", late, WEB, **{
                    "dns.resolver.class": "amazon", "dns.late.reason": "no_socket"})]

    found = [f for f in run(udp(0, 0, 0), udp(4, 4, 4))
             if f.verdict in ("dns_answer_after_client_timeout", "udp_no_listener")]
    assert [(f.rule, f.verdict) for f in found] == [("dns.late_answers",
                                                     "dns_answer_after_client_timeout")]
    signals = {e.signal for e in found[0].evidence}
    assert {"netreceiver.udp.no_ports", "netreceiver.packet.drop_sites"} <= signals
