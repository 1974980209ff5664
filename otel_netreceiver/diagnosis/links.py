"""Causes on another pod of this node: a finding on one pod explained by one on another.

Each pod is judged alone (engine.py), so a client that retries its handshakes cannot see
that the server's accept queue overflowed, and a client reset by a firewall only sees
resets. When both ends run on this node, ``diagnose`` (root, or the agent's own pod: never
an application's question, which may not learn about other pods) links the two: the
effect's finding takes the linked verdict and names the cause's pods in ``related``.
The link is by time and node, not by address: both findings hold in the same window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from otel_netreceiver.diagnosis.model import Finding
from otel_netreceiver.model import Attributes


@dataclass(frozen=True, slots=True)
class Link:
    effect: str  # the verdict on the pod that suffers
    cause: str  # a verdict on another pod of this node in the same window
    becomes: str  # the effect's verdict once linked
    summary: str  # what the linked finding says instead


LINKS: tuple[Link, ...] = (
    Link("syn_retransmits", "listen_overflow", "connect_retries_to_full_listener",
         "Your pod's connection attempts were retried because a server pod on this node "
         "(related) overflowed its accept queue: its kernel dropped the handshakes it had no "
         "room for. The path is not losing packets; the server is not accepting fast enough."),
    Link("reset_by_peer", "firewall_drops", "reset_by_firewall",
         "Your pod's connections were reset by a firewall: a pod on this node (related) "
         "rejected packets by netfilter in the same window (a REJECT rule answers with a "
         "reset). Resets your pod sent itself (no_socket) came after: its connections were "
         "already gone."),
)


def link(findings: list[Finding], links: tuple[Link, ...] = LINKS) -> list[Finding]:
    """Findings with their cross-pod causes named; node-wide findings that repeat a pod's
    verdict are dropped (the pod's finding says it, with the pod)."""
    pods_by_verdict: defaultdict[str, list[Attributes]] = defaultdict(list)
    for finding in findings:
        if finding.subject:
            pods_by_verdict[finding.verdict].append(finding.subject)
    out = []
    for finding in findings:
        if not finding.subject and finding.verdict in pods_by_verdict:
            continue
        out.append(_linked(finding, pods_by_verdict, links))
    return out


def _linked(finding: Finding, pods_by_verdict: dict[str, list[Attributes]],
            links: tuple[Link, ...]) -> Finding:
    if not finding.subject:
        return finding
    for candidate in links:
        if finding.verdict != candidate.effect:
            continue
        causes = tuple(p for p in pods_by_verdict.get(candidate.cause, ())
                       if p != finding.subject)
        if causes:
            return replace(finding, verdict=candidate.becomes, summary=candidate.summary,
                           related=causes)
    return finding
