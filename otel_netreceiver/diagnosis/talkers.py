"""Name the pods and numbers behind a finding (``diagnose`` only).

A rule decides from a few counters; what an operator needs next is *who*: which pods sent
the link-local packets the ENI dropped, which resolver pod did not answer, which pods
moved the bytes when a bandwidth allowance was exceeded. A ``Detail`` is attached to a
rule id; after the engine has decided (engine.diagnose), it reads per-pod totals of one
signal over the same window and source (local history or Prometheus), and rewrites the
finding: its summary names the top pods with their numbers and share, ``related`` lists
them, and their totals join the evidence. A detail may also change the verdict when the
per-pod numbers tell two causes apart (a resolver that did not answer, or answers lost
on the way).

Only ``diagnose`` (root, the agent's own pod, remote mode) runs details: an application's
own question (node API /v1/correlate) must never learn about other pods.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.diagnosis.model import Condition, Evidence, Finding, Op, Question, Signal
from otel_netreceiver.model import Attributes

if TYPE_CHECKING:
    from otel_netreceiver.diagnosis.engine import Source

POD_ID = ("k8s.pod.uid", "k8s.pod.name", "k8s.namespace.name")
NODE_KEY = "k8s.node.name"  # remote mode's cluster view keeps the node on aggregates


@dataclass(frozen=True, slots=True)
class PodTotal:
    """One pod's increase of a signal over the window, split by ``split`` values."""

    identity: Attributes
    total: float
    parts: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # the window the source measured it over (local: observations)

    @property
    def name(self) -> str:
        have = dict(self.identity)
        pod = have.get("k8s.pod.name") or have.get("k8s.pod.uid", "?")
        namespace = have.get("k8s.namespace.name")
        return f"{namespace}/{pod}" if namespace else pod


def pod_signal(signal: Signal, split: str = "") -> Signal:
    """``signal`` summed over every namespace but grouped by pod (and ``split``): Scope.ALL
    keeps only the grouping attributes, so the pod identity must be asked for."""
    keys = (*POD_ID, *signal.group_by, *((split,) if split else ()))
    return replace(signal, group_by=tuple(dict.fromkeys(keys)))


def nodes_of(finding: Finding) -> frozenset[str]:
    """The nodes a finding's evidence is about (remote cluster view); empty: this node."""
    return frozenset(v for e in finding.evidence for k, v in e.attributes if k == NODE_KEY)


def per_pod(source: Source, question: Question, signal: Signal, split: str = "",
            nodes: frozenset[str] = frozenset()) -> list[PodTotal]:
    """Per-pod increases of ``signal`` in the window, largest first (pods with none left
    out); with ``nodes``, only pods on those nodes."""
    totals: defaultdict[Attributes, float] = defaultdict(float)
    seconds: defaultdict[Attributes, float] = defaultdict(float)
    parts: defaultdict[Attributes, defaultdict[str, float]] = defaultdict(
        lambda: defaultdict(float))
    for evidence in source.evaluate(Condition(pod_signal(signal, split), Op.INCREASE),
                                    question):
        have = dict(evidence.attributes)
        if not have.get("k8s.pod.uid") and not have.get("k8s.pod.name"):
            continue  # the node's own namespace, hostNetwork pods: no pod to name
        if nodes and have.get(NODE_KEY, "") not in nodes:
            continue
        identity = tuple((k, have[k]) for k in POD_ID if k in have)
        totals[identity] += evidence.delta
        seconds[identity] = max(seconds[identity], evidence.window_seconds)
        if split:
            parts[identity][have.get(split, "unknown")] += evidence.delta
    found = [PodTotal(i, t, dict(parts[i]), seconds[i]) for i, t in totals.items() if t > 0]
    return sorted(found, key=lambda p: (-p.total, p.name))


def peak(source: Source, question: Question, signal: Signal,
         nodes: frozenset[str] = frozenset()) -> list[Evidence]:
    """The gauge's highest value in the window per group (a contract metric not yet in the
    catalogue reads as nothing, so a detail can name it before it exists)."""
    if signal.metric not in CATALOGUE:
        return []
    found = source.evaluate(Condition(signal, Op.PEAK, above=None), question)
    return [e for e in found if not nodes or dict(e.attributes).get(NODE_KEY, "") in nodes]


def number(value: float) -> str:
    """Counts as people read them: 7,320; 1.2 M; 3.4 GB for bytes is the caller's job."""
    if value >= 10_000_000:
        return f"{value / 1e6:.3g} M"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def share_line(pods: Sequence[PodTotal], unit: str, fmt: Callable[[float], str] = number,
               top: int = 3) -> str:
    """'shop/web-a 7,320 packets (61%, 122/s), ...' for the ``top`` largest pods."""
    whole = sum(p.total for p in pods) or 1.0
    out = []
    for p in pods[:top]:
        rate = f", {fmt(p.total / p.seconds)}/s" if p.seconds > 0 else ""
        split = ""
        if p.parts:
            ordered = sorted(p.parts.items(), key=lambda kv: -kv[1])
            split = "; " + ", ".join(f"{k} {p.total and v / p.total:.0%}" for k, v in ordered)
        amount = f"{fmt(p.total)} {unit}".rstrip()
        out.append(f"{p.name} {amount} ({p.total / whole:.0%}{rate}{split})")
    return ", ".join(out)


def as_evidence(pods: Sequence[PodTotal], signal: Signal, top: int = 3) -> tuple[Evidence, ...]:
    return tuple(Evidence(signal.metric, "all", p.identity, p.total, p.seconds)
                 for p in pods[:top])


def related(pods: Sequence[PodTotal], top: int = 3) -> tuple[Attributes, ...]:
    return tuple(p.identity for p in pods[:top])


# A detail: (the finding, the source, the node-level question) → the finding, rewritten
Detail = Callable[[Finding, "Source", Question], Finding]


def apply(findings: Sequence[Finding], source: Source, question: Question,
          details: Mapping[str, Detail]) -> list[Finding]:
    """Every finding whose rule has a detail, rewritten by it; the others as they were.

    The details look at the whole node (or cluster) whatever namespace ``diagnose`` was
    asked about: a share is of the node's total, and a pod's resolver runs elsewhere."""
    node = replace(question, pod_uid="", every_pod=False, namespace="")
    return [details[f.rule](f, source, node) if f.rule in details else f for f in findings]
