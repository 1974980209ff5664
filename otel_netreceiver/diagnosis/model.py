"""The vocabulary of rules and findings (frozen data; the table lives in rules.py).

A rule says: when any of these signals increased over the window (in the caller's pod,
the node's own namespace, or the node as a whole), the verdict is X, and here is the
seed's advice. A source (the agent's history, later a Prometheus query API) turns a
``Signal`` into per-series increases; the engine decides and orders findings.
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

    def matches(self, attributes: Attributes) -> bool:
        have = dict(attributes)
        return all(have.get(k) == v for k, v in self.match)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    verdict: str
    severity: str  # critical | warning | info
    topics: frozenset[str]  # which questions it answers: dns, socket
    any_of: tuple[Signal, ...]  # fires when any of these increased by more than ``above``
    summary: str
    advice: str
    seed: str  # the playbook passage it comes from
    error_types: frozenset[str] = frozenset()  # empty: any error
    transports: frozenset[str] = frozenset()  # empty: any transport
    also: tuple[Signal, ...] = ()  # shown as evidence when they moved, never decide
    above: float = 0.0


@dataclass(frozen=True, slots=True)
class Question:
    """What a caller asks about: its error, its pod, a window."""

    topic: str  # dns | socket
    start_unix_nano: int
    end_unix_nano: int
    error_type: str = ""
    transport: str = ""
    pod_uid: str = ""  # "" : a host-network caller, node signals only


@dataclass(frozen=True, slots=True)
class Evidence:
    signal: str
    scope: str
    attributes: Attributes
    delta: float
    window_seconds: float

    def as_dict(self) -> dict:
        return {"signal": self.signal, "scope": self.scope, "attributes": dict(self.attributes),
                "delta": self.delta, "window_seconds": round(self.window_seconds, 3)}


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    verdict: str
    severity: str
    summary: str
    advice: str
    evidence: tuple[Evidence, ...] = field(default=())

    def as_dict(self) -> dict:
        return {"rule": self.rule, "verdict": self.verdict, "severity": self.severity,
                "summary": self.summary, "advice": self.advice,
                "evidence": [e.as_dict() for e in self.evidence]}
