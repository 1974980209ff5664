"""POST /v1/correlate: validate the question, ask the rules, shape the answer.

Pure apart from the two callables it is given (refresh the samplers, read the clock),
so the request rules are tested without a server (docs/node-api.md is the contract).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from otel_netreceiver.config.loader import parse_duration
from otel_netreceiver.diagnosis.engine import PodListing, Source, diagnose, evaluate, verdict
from otel_netreceiver.diagnosis.model import Question, Rule
from otel_netreceiver.nodeapi.callers import Caller

TOPICS = ("dns", "socket")
TRANSPORTS = ("", "udp", "tcp")
PHASES = ("", "lookup", "connect", "read", "write")
MAX_WINDOW_S, DEFAULT_WINDOW_S = 300.0, 30.0
FUTURE_SLACK_NS = 5 * 10**9  # clocks of a pod and its node are the same clock; allow jitter


class BadRequest(ValueError):
    """The request names a field it got wrong."""


@dataclass(frozen=True, slots=True)
class Ask:
    topic: str
    error_type: str
    transport: str
    phase: str
    at_unix_nano: int
    window_seconds: float


def _text(body: Mapping[str, Any], name: str, allowed: tuple[str, ...] | None,
          default: str = "") -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or len(value) > 64:
        raise BadRequest(f"{name}: must be a string of at most 64 characters")
    if allowed is not None and value not in allowed:
        choices = ", ".join(a or "(empty)" for a in allowed)
        raise BadRequest(f"{name}: must be one of {choices}")
    return value


def parse_ask(body: Any, now_ns: int) -> Ask:
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    unknown = set(body) - {"signal", "error_type", "transport", "phase", "at_unix_nano",
                           "window_seconds"}
    if unknown:
        raise BadRequest(f"{sorted(unknown)[0]}: unknown field")
    topic = _text(body, "signal", TOPICS, "")
    window = body.get("window_seconds", DEFAULT_WINDOW_S)
    if isinstance(window, bool) or not isinstance(window, int | float) \
            or not 1 <= window <= MAX_WINDOW_S:
        raise BadRequest(f"window_seconds: must be a number from 1 to {MAX_WINDOW_S:.0f}")
    at = body.get("at_unix_nano", now_ns)
    if isinstance(at, bool) or not isinstance(at, int) or at <= 0:
        raise BadRequest("at_unix_nano: must be a positive integer (nanoseconds since 1970)")
    if at > now_ns + FUTURE_SLACK_NS:
        raise BadRequest("at_unix_nano: is in the future")
    return Ask(topic, _text(body, "error_type", None), _text(body, "transport", TRANSPORTS),
               _text(body, "phase", PHASES), min(at, now_ns), float(window))


DnsPart = Callable[[Caller, int, int], dict[str, Any]]  # nodeapi/dns.py: DnsEvidence


def answer(ask: Ask, caller: Caller, rules: tuple[Rule, ...], source: Source, node: str,
           now_ns: int, dns: DnsPart | None = None) -> dict[str, Any]:
    """The response document: what the caller may see, nothing of other pods.

    A "dns" question also gets the caller's own DNS evidence (``dns``), when the agent
    has it wired."""
    start = ask.at_unix_nano - int(ask.window_seconds * 1e9)
    question = Question(ask.topic, start, now_ns, ask.error_type, ask.transport,
                        caller.pod_uid if caller.kind == "pod" else "")
    findings = evaluate(rules, source, question)
    out = {"node": node, "caller": caller.as_dict(),
           "window": {"start_unix_nano": start, "end_unix_nano": now_ns,
                      "seconds": round((now_ns - start) / 1e9, 3)},
           "verdict": verdict(findings), "findings": [f.as_dict() for f in findings]}
    if ask.topic == "dns" and dns is not None:
        out["dns"] = dns(caller, start, now_ns)
    return out


def parse_diagnose(params: Mapping[str, str], now_ns: int,
                   history_seconds: float) -> tuple[Question, str]:
    """GET /v1/diagnose?since=5m&namespace=shop&pod=web-1 → (question, pod name filter)."""
    unknown = set(params) - {"since", "pod", "namespace"}
    if unknown:
        raise BadRequest(f"{sorted(unknown)[0]}: unknown parameter")
    try:
        since = parse_duration(params.get("since", "5m"))
    except ValueError as exc:
        raise BadRequest(f"since: {exc}") from None
    if not 1 <= since <= history_seconds:
        raise BadRequest(f"since: must be from 1s to the history's {history_seconds:.0f}s")
    start = now_ns - int(since * 1e9)
    return (Question("", start, now_ns, every_pod=True, namespace=params.get("namespace", "")),
            params.get("pod", ""))


def diagnosis(question: Question, pod: str, rules: tuple[Rule, ...], source: Source,
              pods: PodListing, node: str) -> dict[str, Any]:
    found = diagnose(rules, source, pods, question)
    if pod:
        found = [f for f in found if dict(f.subject).get("k8s.pod.name") == pod
                 or dict(f.subject).get("k8s.pod.uid") == pod]
    return {"node": node, "window": {"start_unix_nano": question.start_unix_nano,
                                     "end_unix_nano": question.end_unix_nano,
                                     "seconds": round(question.seconds, 3)},
            "verdict": verdict(found), "findings": [f.as_dict() for f in found]}


class Correlator:
    """Binds the rules to a source, a node name, a refresh hook and a clock."""

    def __init__(self, rules: tuple[Rule, ...], source: Source, node: str,
                 refresh: Callable[..., None] = lambda at_unix_nano=0: None,
                 clock: Callable[[], int] = time.time_ns, pods: PodListing | None = None,
                 history_seconds: float = MAX_WINDOW_S, dns: DnsPart | None = None) -> None:
        self._rules, self._source, self._node, self._dns = rules, source, node, dns
        self._refresh, self._clock = refresh, clock
        self._pods, self._history_seconds = pods, history_seconds

    def diagnose(self, params: Mapping[str, str]) -> dict[str, Any]:
        """The whole node: every rule, node-level once and per pod (admins only)."""
        question, pod = parse_diagnose(params, self._clock(), self._history_seconds)
        self._refresh()
        question = Question(question.topic, question.start_unix_nano, self._clock(),
                            every_pod=True, namespace=question.namespace)
        pods = self._pods if self._pods is not None else _NoPods()
        return diagnosis(question, pod, self._rules, self._source, pods, self._node)

    def __call__(self, body: Any, caller: Caller) -> dict[str, Any]:
        ask = parse_ask(body, self._clock())
        self._refresh(ask.at_unix_nano)  # read the counters once more: up to the error
        return answer(ask, caller, self._rules, self._source, self._node, self._clock(),
                      self._dns)


class _NoPods:
    def pods(self, question: Question) -> list:
        return []
