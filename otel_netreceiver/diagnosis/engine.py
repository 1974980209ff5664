"""Decide which rules fire for a question, and with what evidence.

The engine is pure given a ``Source``: the agent's history (local.py) or a Prometheus
query API (remote mode). A source computes a condition's value per evidence group;
the engine applies thresholds, combines ``any_of``/``all_of`` and orders the findings.
For ``diagnose`` (every pod), node-level conditions are evaluated once and pod-level
ones once per pod, so a node problem is reported once, a pod problem with its pod.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from otel_netreceiver.diagnosis import talkers
from otel_netreceiver.diagnosis.links import link
from otel_netreceiver.diagnosis.model import (
    SEVERITY_ORDER,
    Condition,
    Evidence,
    Finding,
    Question,
    Rule,
    Scope,
)
from otel_netreceiver.diagnosis.rules import DETAILS
from otel_netreceiver.model import Attributes

NOTHING = "nothing_abnormal"
ALL_SCOPES = frozenset(Scope)
NODE_SCOPES = frozenset({Scope.HOST, Scope.NODE, Scope.ALL})


class Source(Protocol):
    def evaluate(self, condition: Condition, question: Question) -> list[Evidence]:
        """The condition's value for every evidence group over the question's window."""
        ...


class PodListing(Protocol):
    def pods(self, question: Question) -> list[Attributes]:
        """Identities (k8s.pod.uid, name, namespace) of the pods seen in the window."""
        ...


def applies(rule: Rule, question: Question) -> bool:
    if question.topic and question.topic not in rule.topics:
        return False
    # diagnose asks with no error type or transport: every rule of its topics applies
    if rule.error_types and question.error_type and question.error_type not in rule.error_types:
        return False
    return not (rule.transports and question.transport) or question.transport in rule.transports


def _holding(source: Source, conditions: Iterable[Condition], question: Question,
             scopes: Collection[Scope], strict: bool = False) -> list[list[Evidence]]:
    """Per condition in scope, the groups for which it holds.

    With ``strict`` (an all_of), a condition that cannot be read counts as not holding.
    """
    out: list[list[Evidence]] = []
    for condition in conditions:
        readable = condition.signal.scope in scopes and (
            # a host-network caller has no pod: pod signals are not its to read
            condition.signal.scope is not Scope.POD or bool(question.pod_uid))
        if not readable:
            if strict:
                out.append([])
            continue
        out.append([e for e in source.evaluate(condition, question) if condition.holds(e.delta)])
    return out


def _fire(rule: Rule, source: Source, question: Question,
          scopes: Collection[Scope]) -> Finding | None:
    deciding = [e for found in _holding(source, rule.deciding(), question, scopes) for e in found]
    if not deciding:
        return None
    required = _holding(source, rule.required(), question, ALL_SCOPES, strict=True)
    if any(not found for found in required):
        return None
    # a none_of that cannot be read (local mode, raw metrics) does not veto: nothing says
    # the excluded cause holds
    if any(_holding(source, rule.excluding(), question, ALL_SCOPES)):
        return None
    supporting = _holding(source, rule.supporting(), question, ALL_SCOPES)
    evidence = deciding + [e for found in (*required, *supporting) for e in found]
    return Finding(rule.id, rule.verdict, rule.severity, rule.summary, rule.advice,
                   tuple(evidence))


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))


def evaluate(rules: Sequence[Rule], source: Source, question: Question,
             scopes: Collection[Scope] = ALL_SCOPES) -> list[Finding]:
    """Findings for one subject (a pod, or the node), most severe first; a finding that
    another one explains away (``Rule.supersedes``) is left out."""
    fired = [(rule, f) for rule in rules if applies(rule, question)
             if (f := _fire(rule, source, question, scopes)) is not None]
    hidden = {verdict for rule, _ in fired for verdict in rule.supersedes}
    kept: dict[str, Finding] = {}  # one finding per verdict: the first rule that gave it
    for _, finding in fired:
        if finding.verdict not in hidden:
            kept.setdefault(finding.verdict, finding)
    return _ordered(list(kept.values()))


def diagnose(rules: Sequence[Rule], source: Source, pods: PodListing,
             question: Question,
             details: Mapping[str, talkers.Detail] | None = None) -> list[Finding]:
    """Every rule over the node once and over each pod seen in the window; the findings
    of rules with a detail (default: rules.DETAILS) name the pods and numbers behind them."""
    node = replace(question, pod_uid="", every_pod=False)
    findings = evaluate(rules, source, node, NODE_SCOPES)
    for identity in pods.pods(question):
        uid = dict(identity).get("k8s.pod.uid", "")
        if not uid:
            continue
        mine = evaluate(rules, source, replace(question, pod_uid=uid), {Scope.POD})
        findings += [replace(f, subject=identity) for f in mine]
    named = talkers.apply(link(findings), source, question,
                          DETAILS if details is None else details)
    return _ordered(named)


def verdict(findings: Sequence[Finding]) -> str:
    return findings[0].verdict if findings else NOTHING
