"""The agent's correlation answer (docs/node-api.md) as frozen dataclasses.

`parse_answer` is pure and strict: a body that does not follow the contract raises
`AnswerError` naming the field, which the client turns into a status, never into an
exception in the application.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .dns_evidence import DnsEvidence, parse_dns


class AnswerError(ValueError):
    """The agent's body is not the contract's JSON; the message names the field."""


@dataclass(frozen=True, slots=True)
class Evidence:
    signal: str
    attributes: tuple[tuple[str, str], ...]
    scope: str
    delta: float
    window_seconds: float


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    verdict: str
    severity: str
    summary: str
    advice: str
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class AgentAnswer:
    node: str
    caller_kind: str
    window_seconds: float
    verdict: str
    findings: tuple[Finding, ...]
    dns: DnsEvidence | None = None  # this pod's DNS evidence (a "dns" question only)


def _require_object(obj: Any, where: str) -> None:
    if not isinstance(obj, dict):
        raise AnswerError(f"{where}: expected an object, got {type(obj).__name__}")


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    _require_object(obj, where)
    if key not in obj:
        raise AnswerError(f"{where}.{key}: missing")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise AnswerError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, "
                          f"got {type(value).__name__}")
    return value


def _evidence(obj: Any, where: str) -> Evidence:
    _require_object(obj, where)
    attrs = _get(obj, "attributes", dict, where) if "attributes" in obj else {}
    return Evidence(
        signal=_get(obj, "signal", str, where),
        attributes=tuple(sorted((str(k), str(v)) for k, v in attrs.items())),
        scope=str(obj.get("scope", "")),
        delta=float(_get(obj, "delta", (int, float), where)),
        window_seconds=float(obj.get("window_seconds", 0.0) or 0.0),
    )


def _finding(obj: Any, where: str) -> Finding:
    _require_object(obj, where)
    evidence = _get(obj, "evidence", list, where) if "evidence" in obj else []
    return Finding(
        rule=_get(obj, "rule", str, where),
        verdict=_get(obj, "verdict", str, where),
        severity=str(obj.get("severity", "")),
        summary=str(obj.get("summary", "")),
        advice=str(obj.get("advice", "")),
        evidence=tuple(_evidence(e, f"{where}.evidence[{i}]") for i, e in enumerate(evidence)),
    )


def parse_answer(body: bytes) -> AgentAnswer:
    """Parse a 200 body of POST /v1/correlate."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnswerError(f"body: not JSON ({exc})") from None
    try:
        return _answer(doc)
    except (TypeError, ValueError) as exc:  # e.g. "seconds": "soon"
        if isinstance(exc, AnswerError):
            raise
        raise AnswerError(f"answer: {exc}") from None


def _answer(doc: Any) -> AgentAnswer:
    findings = _get(doc, "findings", list, "answer")
    window = doc.get("window") if isinstance(doc.get("window"), dict) else {}
    caller = doc.get("caller") if isinstance(doc.get("caller"), dict) else {}
    return AgentAnswer(
        node=str(doc.get("node", "")),
        caller_kind=str(caller.get("kind", "")),
        window_seconds=float(window.get("seconds", 0.0) or 0.0),
        verdict=_get(doc, "verdict", str, "answer"),
        findings=tuple(_finding(f, f"answer.findings[{i}]") for i, f in enumerate(findings)),
        dns=parse_dns(doc.get("dns")),
    )
