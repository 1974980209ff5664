"""DNS as the dns probe sees it at every pod's sockets (issue 14), as rules and details.

The guides' DNS playbooks read the pod's UDP counters (playbooks.py): they say a datagram
was lost, not which lookup. The dns probe counts the lookups themselves, per pod and
resolver class, for any language: queries and responses by role (client: the pod asked;
server: the pod answered, as CoreDNS or NodeLocal DNSCache do), timeouts against the
pod's own resolv.conf timeout, answers that came after it (case 1 of the ACK Net
Exporter guide), SERVFAIL/REFUSED, search-path (ndots) fan-out and TCP fallbacks.

The rules decide per pod; the details (talkers.py, ``diagnose`` only) then look at the
resolver pods in view for the same window: did the resolver receive the queries
(server-role queries) and did it answer (server-role responses)? That splits a client's
timeouts into "the resolver did not answer" and "lost between the pod and the resolver".
For ``dns.eni_linklocal`` the detail names the pods whose link-local packets went through
the ENI (not those a node-local cache answered) with their share, and the interface's
highest one-second count against the 1024 packets/s allowance.

Metrics other branches add (ndots expansions, TCP fallbacks, the per-interface peak,
``linklocal.answered_by``) are read only once the catalogue has them: ``catalogued()``
leaves a rule out until every metric it reads exists, and the peak reads as nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.diagnosis import talkers
from otel_netreceiver.diagnosis.model import Condition, Finding, Op, Question, Rule, Scope, Signal
from otel_netreceiver.diagnosis.playbooks import UDP4_DROPS

if TYPE_CHECKING:
    from otel_netreceiver.diagnosis.engine import Source

DNS, NODE = frozenset({"dns"}), frozenset({"node"})
CLASS = ("dns.resolver.class",)
LINKLOCAL_PPS = 1024  # per ENI, to Amazon DNS, IMDS and Time Sync (EKS network guide)
LATE_QUANTILE_S = 1.0  # a p99 lookup above this is worth showing with late answers
D = "netreceiver.pod.dns."
PEAK_METRIC = "netreceiver.linklocal.peak_packets_per_second"


def _pod(name: str, *match: tuple[str, str], group_by: tuple[str, ...] = CLASS) -> Signal:
    return Signal(D + name, Scope.POD, tuple(match), group_by)


def _served(name: str, *match: tuple[str, str]) -> Signal:
    """What resolver pods in view did: server-role series of every pod (details only)."""
    return Signal(D + name, Scope.ALL, (("dns.role", "server"), *match))


CLIENT = ("dns.role", "client")
SENT = _pod("queries", CLIENT)
UPSTREAM_CODES = ("SERVFAIL", "REFUSED")
ENI_PACKETS = Signal("netreceiver.pod.linklocal.packets", Scope.ALL,
                     exclude=(("linklocal.answered_by", "node"),))
PEAK = Signal(PEAK_METRIC, Scope.NODE, group_by=("network.interface.name",))

DNS_EBPF_RULES: tuple[Rule, ...] = (
    Rule("dns.late_answers", "dns_answer_after_client_timeout", "warning", DNS,
         (_pod("late_answers", group_by=(*CLASS, "dns.late.reason")),),
         "Case 1 of the ACK Net Exporter guide, seen by the dns probe: DNS answers reached "
         "your pod after its resolver timeout (after_timeout) or after the socket that asked "
         "was closed (no_socket, dropped by the kernel): the resolver answered, too late. "
         "The latency histogram's tail says how late.",
         "The resolver is slow (an upstream on the internet, CoreDNS throttled or "
         "overloaded): point the pod at CoreDNS or NodeLocal DNSCache, fix the slow "
         "upstream, or make the client's timeout (options timeout:) longer than the answer "
         "time.",
         "ACK Net Exporter guide, case 1: DNS answer slower than the client timeout; the dns "
         "probe's late answers",
         # the UDP counters' view of the same answers (case1.dns_answer_after_timeout in
         # playbooks.py), whose finding this one replaces when both hold
         also=(_pod("timeouts"),
               Condition(_pod("latency"), Op.QUANTILE, above=LATE_QUANTILE_S),
               Signal("netreceiver.udp.no_ports", Scope.POD), UDP4_DROPS),
         pattern="case 1: DNS answer slower than the client timeout",
         # the timeouts of an answer that came late are that answer's: one finding
         supersedes=frozenset({"udp_no_listener", "dns_timeouts"})),
    Rule("dns.timeouts", "dns_timeouts", "warning", DNS,
         (_pod("timeouts"),),
         "DNS queries of your pod got no answer within its resolver timeout (options "
         "timeout: of its resolv.conf, default 5 s): each one is a lookup that waited the "
         "whole timeout and was retried or failed.",
         "diagnose names the side: if the resolver pod received the queries and did not "
         "answer, look at the resolver (its upstream, CPU throttling, replicas); if it "
         "answered everything it received, the queries or answers were lost between the pod "
         "and the resolver (conntrack, NetworkPolicy, the ENI's link-local allowance).",
         "ACK Net Exporter guide DNS playbook; the dns probe's timeouts per pod",
         also=(SENT, _pod("retransmits"))),
    Rule("dns.upstream_failures", "dns_server_failure", "warning", DNS,
         tuple(_pod("responses", CLIENT, ("dns.response.code", code),
                    group_by=(*CLASS, "dns.response.code")) for code in UPSTREAM_CODES),
         "Your pod's resolver answered SERVFAIL or REFUSED: it could not get an answer from "
         "its upstream (or refused to ask it), so the lookup failed at once.",
         "Look at the resolver's upstream (forward plugin of CoreDNS, the VPC resolver, a "
         "conditional forwarder) and its errors; REFUSED also means an ACL or a resolver "
         "that does not recurse for this client.",
         "ACK Net Exporter guide DNS playbook: the answer's rcode; EKS network guide: DNS",
         also=(SENT,)),
    Rule("dns.tcp_fallback_failed", "dns_tcp_fallback_failed", "warning", DNS,
         (_pod("tcp_fallbacks", ("dns.fallback.result", "failed")),),
         "DNS answers to your pod were truncated (TC bit) and the retry over TCP failed: the "
         "client got no usable answer for large responses (many records, DNSSEC).",
         "Allow TCP port 53 to the resolver (security groups, NetworkPolicies, NodeLocal "
         "DNSCache's TCP listener), and keep answers small (fewer records per name).",
         "ACK Net Exporter guide DNS playbook; RFC 7766 (DNS over TCP)",
         also=(_pod("truncated"),)),
    Rule("dns.ndots_amplification", "dns_search_path_amplification", "info", DNS,
         (_pod("ndots_expansions"),),
         "Your pod's lookups fanned out over the search path (ndots): each name with fewer "
         "dots than ndots was tried with every search domain first, a run of NXDOMAIN "
         "answers before the real one. It multiplies DNS and link-local load.",
         "Use fully qualified names (a trailing dot), or set dnsConfig options ndots:2 (or "
         "lower) for pods that mostly look up external names.",
         "EKS network guide: DNS, ndots and search domains",
         also=(_pod("responses", CLIENT, ("dns.response.code", "NXDOMAIN"),
                    group_by=(*CLASS, "dns.response.code")),)),
)


def catalogued(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """The rules whose every metric is in the catalogue (others wait for their probe)."""
    return tuple(r for r in rules if all(s.metric in CATALOGUE for s in r.signals()))


def _with(finding: Finding, text: str, **changes: object) -> Finding:
    return replace(finding, summary=f"{finding.summary} {text}", **changes)


def linklocal_talkers(finding: Finding, source: Source, question: Question) -> Finding:
    """Names the pods whose link-local packets went through the ENI in the window
    (netreceiver.pod.linklocal.packets without those answered on the node), largest first,
    with their share, rate and services, and the highest one-second count of the
    interfaces that dropped (netreceiver.linklocal.peak_packets_per_second) against the
    1024 packets/s allowance."""
    nodes = talkers.nodes_of(finding)
    pods = talkers.per_pod(source, question, ENI_PACKETS, "linklocal.service", nodes)
    dropped = {dict(e.attributes).get("network.interface.name") for e in finding.evidence}
    peaks = [e for e in talkers.peak(source, question, PEAK, nodes)
             if dict(e.attributes).get("network.interface.name") in dropped]
    if pods:
        line = talkers.share_line(pods, "packets")
        text = (f"Top pods by link-local packets through the ENI in these "
                f"{max(p.seconds for p in pods):.0f} s (share, rate; by service): {line}.")
    else:
        text = "No pod's link-local packets were seen (the dns probe is off, or the " \
               "packets came from the node itself)."
    for e in sorted(peaks, key=lambda e: -e.delta):
        where = dict(e.attributes).get("network.interface.name", "?")
        over = "over" if e.delta > LINKLOCAL_PPS else "under"
        text += (f" Highest one-second count on {where}: {talkers.number(e.delta)} packets/s, "
                 f"{over} the {LINKLOCAL_PPS} allowance.")
    return _with(finding, text, related=talkers.related(pods),
                 evidence=(*finding.evidence, *peaks,
                           *talkers.as_evidence(pods, ENI_PACKETS)))


def _resolvers(source: Source, question: Question) -> list[tuple[talkers.PodTotal, float]]:
    """Resolver pods in view: (queries received, answers sent) in the window."""
    received = talkers.per_pod(source, question, _served("queries"))
    answered = {p.identity: p.total for p in talkers.per_pod(source, question,
                                                             _served("responses"))}
    return [(p, answered.get(p.identity, 0.0)) for p in received]


def timeout_side(finding: Finding, source: Source, question: Question) -> Finding:
    """Asks the resolver pods in view (server-role queries and responses of every pod)
    whether they received the queries and answered: received more than they answered
    makes the verdict dns_timeouts_resolver_not_answering, naming them with both counts;
    answered all they received makes it dns_timeouts_lost_before_resolver (the queries or
    their answers were lost between); with no resolver pod in view, or only the Amazon
    resolver asked (never a pod: the ENI's link-local path), it stays dns_timeouts and
    says so."""
    mine = sum(e.delta for e in finding.evidence if e.signal == D + "timeouts")
    head = f"{talkers.number(mine)} queries timed out."
    classes = {dict(e.attributes).get("dns.resolver.class") for e in finding.evidence
               if e.signal == D + "timeouts"}
    if classes == {"amazon"}:  # the VPC resolver: never a pod, always through the ENI
        return _with(finding, f"{head} They went to the Amazon resolver, outside the cluster, "
                              "through the ENI's link-local allowance (see dns.eni_linklocal).")
    resolvers = _resolvers(source, question)
    listed = ", ".join(f"{p.name} received {talkers.number(p.total)}, answered "
                       f"{talkers.number(min(a, p.total))}" for p, a in resolvers[:3])
    silent = [(p, a) for p, a in resolvers if a < p.total]
    if silent:
        names = tuple(p.identity for p, _ in silent[:3])
        return _with(finding, f"{head} The resolver pods received queries and did not answer "
                              f"all of them: {listed}: the resolver side.",
                     verdict="dns_timeouts_resolver_not_answering", related=names)
    if resolvers:
        return _with(finding, f"{head} The resolver pods in view answered every query they "
                              f"received ({listed}): the lost queries never reached them, or "
                              "their answers were lost on the way back: the path between.",
                     verdict="dns_timeouts_lost_before_resolver",
                     related=tuple(p.identity for p, _ in resolvers[:3]))
    return _with(finding, f"{head} No resolver pod in view received DNS queries in this "
                          "window: the resolver is on another node or outside the cluster "
                          "(diagnose --prometheus sees every node's CoreDNS).")


def upstream_failures(finding: Finding, source: Source, question: Question) -> Finding:
    """Counts the pod's SERVFAIL/REFUSED answers and names the resolver pods in view that
    sent them (server-role responses), with their counts."""
    mine = sum(e.delta for e in finding.evidence if e.signal == D + "responses"
               and dict(e.attributes).get("dns.response.code") in UPSTREAM_CODES)
    text = f"{talkers.number(mine)} SERVFAIL/REFUSED answers."
    pods = [p for code in UPSTREAM_CODES for p in talkers.per_pod(
        source, question, _served("responses", ("dns.response.code", code)))]
    if not pods:
        return _with(finding, text)
    named = ", ".join(f"{p.name} sent {talkers.number(p.total)}" for p in pods[:3])
    return _with(finding, f"{text} Resolver pods in view answered with them: {named}.",
                 related=tuple(dict.fromkeys(p.identity for p in pods[:3])))


DNS_DETAILS = {"dns.eni_linklocal": linklocal_talkers, "dns.timeouts": timeout_side,
               "dns.upstream_failures": upstream_failures}
# what the history must keep for the details (the peak once its probe has it)
DETAIL_SIGNALS = tuple(s for s in (ENI_PACKETS, PEAK, _served("queries"), _served("responses"))
                       if s.metric in CATALOGUE)
