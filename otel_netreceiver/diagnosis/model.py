"""The vocabulary of rules and findings (frozen data; the table lives in rules.py).

A rule says: when any of these signals increased over the window (in the caller's pod,
the node's own namespace, or the node as a whole), the verdict is X, and here is the
advice of the guide it comes from (docs/background.md, "Sources"). A source (the agent's
history, later a Prometheus query API) turns a ``Signal`` into per-series increases; the
engine decides and orders findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from otel_netreceiver.model import Attributes


class Scope(Enum):
    """Where a signal is read, relative to the subject (the calling pod)."""

    POD = "pod"  # the subject pod's own series only
    HOST = "host"  # the node's own network namespace (netns.kind=host)
    NODE = "node"  # node-level metrics (ENA, node-wide kernel state)
    ALL = "all"  # summed over every namespace, identities stripped (an aggregate)


SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Signal:
    metric: str
    scope: Scope
    match: Attributes = ()  # attribute values a series must have
    group_by: tuple[str, ...] = ()  # attributes kept in evidence; the rest are summed away
    # A raw Prometheus metric (the control plane's own, not in our catalogue): ``metric``,
    # ``match`` and ``group_by`` are then Prometheus names, read by remote mode only.
    raw: bool = False
    exclude: Attributes = ()  # attribute values a series must not have (a key may repeat)

    def matches(self, attributes: Attributes) -> bool:
        have = dict(attributes)
        return (all(have.get(k) == v for k, v in self.match)
                and all(have.get(k) != v for k, v in self.exclude))


class Op(Enum):
    """What a condition computes from its signal over the window."""

    INCREASE = "increase"  # counter: how much it grew
    RATE = "rate"  # counter: growth per second
    RATIO = "ratio"  # counter: growth of the signal / growth of ``of`` (same groups)
    LEVEL = "level"  # gauge: its latest value (remote mode: the max over the groups' series)
    PEAK = "peak"  # gauge: its highest value in the window (a queue that filled, then drained)
    # gauge: (latest - earliest) / earliest, e.g. series count creeping up; remote mode reads a
    # counter's growth as that of its rate (second half of the window against the first)
    GROWTH = "growth"
    QUANTILE = "quantile"  # histogram: the q-quantile of what it observed in the window


@dataclass(frozen=True, slots=True)
class Condition:
    """A test of one signal: ``op`` over the window, compared with ``above``/``below``."""

    signal: Signal
    op: Op = Op.INCREASE
    above: float | None = 0.0
    below: float | None = None
    of: Signal | None = None  # the denominator of a RATIO
    q: float = 0.99  # for QUANTILE

    def holds(self, value: float) -> bool:
        return ((self.above is None or value > self.above)
                and (self.below is None or value < self.below))


def _conditions(items: tuple[Signal | Condition, ...]) -> tuple[Condition, ...]:
    return tuple(i if isinstance(i, Condition) else Condition(i) for i in items)


@dataclass(frozen=True, slots=True)
class Rule:
    """A playbook step: when any of ``any_of`` (and all of ``all_of``) hold, say ``verdict``.

    A bare Signal in ``any_of``/``all_of``/``also`` means "it increased" (the common case).
    """

    id: str
    verdict: str
    severity: str  # critical | warning | info
    topics: frozenset[str]  # which questions it answers: dns, socket, node, cluster
    any_of: tuple[Signal | Condition, ...]
    summary: str
    advice: str
    source: str  # the guide and passage it encodes, by title (docs/background.md, "Sources")
    error_types: frozenset[str] = frozenset()  # empty: any error
    transports: frozenset[str] = frozenset()  # empty: any transport
    also: tuple[Signal | Condition, ...] = ()  # shown as evidence when they hold, never decide
    all_of: tuple[Signal | Condition, ...] = ()  # must hold too (a pattern of several signals)
    pattern: str = ""  # a named customer case of the ACK Net Exporter guide, when the rule is one
    none_of: tuple[Signal | Condition, ...] = ()  # must hold for no group ("etcd is normal")
    # verdicts this finding explains away for the same subject: the loss rule's retransmits
    # are the reordering rule's spurious ones, not a second cause
    supersedes: frozenset[str] = frozenset()

    def deciding(self) -> tuple[Condition, ...]:
        return _conditions(self.any_of)

    def required(self) -> tuple[Condition, ...]:
        return _conditions(self.all_of)

    def supporting(self) -> tuple[Condition, ...]:
        return _conditions(self.also)

    def excluding(self) -> tuple[Condition, ...]:
        return _conditions(self.none_of)

    def signals(self) -> tuple[Signal, ...]:
        out = []
        for c in (*self.deciding(), *self.required(), *self.supporting(), *self.excluding()):
            out += [c.signal] + ([c.of] if c.of is not None else [])
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Question:
    """What a caller asks about: its error, its pod, a window."""

    topic: str  # dns | socket (the SDK's question); "" : every rule (diagnose)
    start_unix_nano: int
    end_unix_nano: int
    error_type: str = ""
    transport: str = ""
    pod_uid: str = ""  # "" : a host-network caller, node signals only
    every_pod: bool = False  # diagnose: pod signals of every pod, grouped by pod
    namespace: str = ""  # diagnose --namespace: only pods of this Kubernetes namespace

    @property
    def seconds(self) -> float:
        return (self.end_unix_nano - self.start_unix_nano) / 1e9


@dataclass(frozen=True, slots=True)
class Evidence:
    """One group's value of a condition: ``delta`` is the increase (or the value for
    level, ratio, growth and quantile conditions, which ``op`` names)."""

    signal: str
    scope: str
    attributes: Attributes
    delta: float
    window_seconds: float
    op: str = "increase"

    def as_dict(self) -> dict:
        out = {"signal": self.signal, "scope": self.scope, "attributes": dict(self.attributes),
               "delta": self.delta, "window_seconds": round(self.window_seconds, 3)}
        if self.op != "increase":
            # "delta" stays (the node API's contract: every evidence item has one, and the
            # SDK requires it); "op" and "value" say what kind of number it is
            out["op"], out["value"] = self.op, self.delta
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    verdict: str
    severity: str
    summary: str
    advice: str
    evidence: tuple[Evidence, ...] = field(default=())
    subject: Attributes = ()  # diagnose: the pod the finding is about (k8s.pod.*)
    related: tuple[Attributes, ...] = ()  # pods on this node whose findings are its cause

    def as_dict(self) -> dict:
        out = {"rule": self.rule, "verdict": self.verdict, "severity": self.severity,
               "summary": self.summary, "advice": self.advice,
               "evidence": [e.as_dict() for e in self.evidence]}
        if self.subject:
            out["pod"] = dict(self.subject)
        if self.related:
            out["related"] = [dict(r) for r in self.related]
        return out
