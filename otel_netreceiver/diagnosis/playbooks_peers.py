"""The pods behind an ENA bandwidth or PPS allowance (issue 18), as details.

The allowances are per instance: ``bw_out_allowance_exceeded`` says the instance sent
too much, not who did. The peers probe counts every pod's bytes and packets by peer
class (same node, same zone, other zone, other VPC, internet, link-local) and
direction; when an allowance rule fires (ena.bw_in, ena.bw_out, ena.pps in
playbooks.py), the detail names the pods that moved the most in the window, their share
of the node's total, and where their traffic went, by peer class, so the fix (spread
the pod, keep it in its zone, cache what it downloads) is aimed at the right pod.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from otel_netreceiver.diagnosis import talkers
from otel_netreceiver.diagnosis.model import Finding, Question, Scope, Signal

if TYPE_CHECKING:
    from otel_netreceiver.diagnosis.engine import Source

DIRECTION = "network.io.direction"
NOT_LOCAL = (("peer.class", "same_pod"), ("peer.class", "same_node"))  # never on the ENA


def _moved(metric: str, direction: str = "") -> Signal:
    match = ((DIRECTION, direction),) if direction else ()
    return Signal(metric, Scope.ALL, match, exclude=NOT_LOCAL)


BYTES_IN = _moved("netreceiver.pod.peer.bytes", "receive")
BYTES_OUT = _moved("netreceiver.pod.peer.bytes", "transmit")
PACKETS = _moved("netreceiver.pod.peer.packets")


def _naming(signal: Signal, unit: str, what: str,
            fmt: Callable[[float], str]) -> Callable[[Finding, Source, Question], Finding]:
    def detail(finding: Finding, source: Source, question: Question) -> Finding:
        pods = talkers.per_pod(source, question, signal, "peer.class", talkers.nodes_of(finding))
        if not pods:
            text = (f"No pod's {what} were seen in this window (the peers probe is off, or "
                    "the traffic was the node's own).")
            return replace(finding, summary=f"{finding.summary} {text}")
        line = talkers.share_line(pods, unit, fmt)
        text = (f"Top pods by {what} off the node in these {max(p.seconds for p in pods):.0f} s "
                f"(share, rate; by peer class): {line}.")
        return replace(finding, summary=f"{finding.summary} {text}",
                       related=talkers.related(pods),
                       evidence=(*finding.evidence,
                                 *talkers.as_evidence(pods, signal)))
    detail.__doc__ = (f"Names the pods that moved the most {what} off the node in the window "
                      "(netreceiver.pod.peer.*, without the same_pod and same_node classes), "
                      "with their share, rate and peer classes.")
    return detail


PEER_DETAILS = {
    "ena.bw_in": _naming(BYTES_IN, "", "bytes received", talkers.size),
    "ena.bw_out": _naming(BYTES_OUT, "", "bytes sent", talkers.size),
    "ena.pps": _naming(PACKETS, "packets", "packets sent and received", talkers.number),
}
DETAIL_SIGNALS = (BYTES_IN, BYTES_OUT, PACKETS)
