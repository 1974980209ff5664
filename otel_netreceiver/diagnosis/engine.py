"""Decide which rules fire for a question, and with what evidence.

The engine is pure given a ``Source``: the agent's history (local.py) or, for the
cluster-wide diagnosis, a Prometheus query API. A source returns increases per
evidence group; the engine applies thresholds and orders the findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from otel_netreceiver.diagnosis.model import (
    SEVERITY_ORDER,
    Evidence,
    Finding,
    Question,
    Rule,
    Scope,
    Signal,
)

NOTHING = "nothing_abnormal"


class Source(Protocol):
    def increases(self, signal: Signal, question: Question) -> list[Evidence]:
        """Per evidence group, how much ``signal`` moved over the question's window."""
        ...


def applies(rule: Rule, question: Question) -> bool:
    if question.topic not in rule.topics:
        return False
    if rule.error_types and question.error_type not in rule.error_types:
        return False
    return not rule.transports or question.transport in rule.transports


def _readable(signal: Signal, question: Question) -> bool:
    """A host-network caller has no pod: pod-scoped signals are not its to read."""
    return signal.scope is not Scope.POD or bool(question.pod_uid)


def _moved(source: Source, signals: Iterable[Signal], question: Question,
           above: float) -> list[Evidence]:
    found = []
    for signal in signals:
        if _readable(signal, question):
            found += [e for e in source.increases(signal, question) if e.delta > above]
    return found


def evaluate(rules: Sequence[Rule], source: Source, question: Question) -> list[Finding]:
    """Findings, most severe first (table order among equals)."""
    findings = []
    for rule in rules:
        if not applies(rule, question):
            continue
        deciding = _moved(source, rule.any_of, question, rule.above)
        if not deciding:
            continue
        evidence = deciding + _moved(source, rule.also, question, 0.0)
        findings.append(Finding(rule.id, rule.verdict, rule.severity, rule.summary,
                                rule.advice, tuple(evidence)))
    return sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))


def verdict(findings: Sequence[Finding]) -> str:
    return findings[0].verdict if findings else NOTHING
