"""Join the SDK's own classification with the agent's findings; publish the result.

The combined verdict prefers what the node saw (the agent's verdict), then what timing
alone tells (a DNS lookup that got no answer: `dns_packets_lost`), then the agent's
`nothing_abnormal`, else `unknown`. Published as an event on the current span and as a
log record (the OpenTelemetry logs API when present, else stdlib logging).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from .answer import AgentAnswer
from .client import CorrelationResult
from .dns_evidence import dns_sentence
from .errors import Classification
from .identity import K8sIdentity
from .resolver import ResolverContext

log = logging.getLogger("otel_netreceiver_sdk")

EVENT_NAME = "netreceiver.correlation"
ANSWERED = ("ok", "cached")


@dataclass(frozen=True, slots=True)
class Explanation:
    """What explain(exc) returns: the SDK's reading, the agent's, and one verdict."""

    verdict: str
    summary: str
    classification: Classification
    packets_lost: bool | None
    agent_status: str
    agent_detail: str
    agent: AgentAnswer | None
    resolver: ResolverContext | None
    identity: K8sIdentity
    dns_evidence: str = ""  # what the node saw of this pod's DNS (dns_evidence.py), or ""


def _verdict(lost: bool | None, result: CorrelationResult) -> str:
    answer = result.answer if result.status in ANSWERED else None
    if answer is not None and answer.verdict != "nothing_abnormal":
        return answer.verdict
    if lost:
        return "dns_packets_lost"
    return answer.verdict if answer is not None else "unknown"


def _sdk_summary(c: Classification, lost: bool | None, resolver: ResolverContext | None) -> str:
    obs = c.observation
    if c.signal == "dns":
        took = f" after {obs.duration_s:.2f} s" if obs and obs.duration_s is not None else ""
        text = f"DNS lookup failed ({c.error_type}){took}"
        if lost and resolver is not None:
            text += (f", a multiple of the resolver timeout ({resolver.timeout_s} s): no "
                     "answer came, the queries or their answers were lost")
        return text
    if c.signal == "socket":
        where = f" on {obs.phase} ({obs.transport or 'unknown transport'})" if obs else ""
        return f"socket error {c.error_type}{where}"
    return f"not a DNS or socket error ({c.exception})"


def build_explanation(c: Classification, result: CorrelationResult,
                      resolver: ResolverContext | None, identity: K8sIdentity) -> Explanation:
    """Pure: combine the classification with the correlation result."""
    lost = c.observation.packets_lost if c.observation else None
    answer = result.answer if result.status in ANSWERED else None
    summary = _sdk_summary(c, lost, resolver)
    if answer is not None:
        lead = answer.findings[0].summary if answer.findings else "nothing abnormal seen"
        summary += f"; node {answer.node or '?'}: {answer.verdict}: {lead}"
    else:
        summary += f"; agent: {result.status}"
    seen = ""
    if c.signal == "dns" and answer is not None:
        # without the wrapper's observation the question was asked now: so is the error
        at = c.observation.at_unix_nano if c.observation else time.time_ns()
        seen = dns_sentence(answer.dns, at)
        summary += f"; {seen}" if seen else ""
    return Explanation(_verdict(lost, result), summary, c, lost, result.status,
                       result.detail, answer, resolver if c.signal == "dns" else None,
                       identity, seen)


def event_attributes(e: Explanation) -> dict[str, Any]:
    """Span event / log attributes: primitives and lists of strings only (OTel rules)."""
    c, obs = e.classification, e.classification.observation
    attrs: dict[str, Any] = {"error.type": c.error_type, "netreceiver.signal": c.signal,
                             "netreceiver.verdict": e.verdict,
                             "netreceiver.agent.status": e.agent_status,
                             "exception.type": c.exception}
    if obs is not None:
        attrs["netreceiver.phase"] = obs.phase
        if obs.transport:
            attrs["network.transport"] = obs.transport
        if obs.duration_s is not None:
            attrs["dns.lookup.duration"] = obs.duration_s
    if e.packets_lost is not None:
        attrs["dns.packets_lost"] = e.packets_lost
    if e.dns_evidence:
        attrs["netreceiver.dns.evidence"] = e.dns_evidence
    if e.agent is not None:
        findings = e.agent.findings
        attrs["netreceiver.findings.rules"] = [f.rule for f in findings]
        attrs["netreceiver.findings.summaries"] = [f.summary for f in findings]
        attrs["netreceiver.findings.advice"] = [f.advice for f in findings]
        attrs["netreceiver.evidence"] = json.dumps(
            [{"rule": f.rule, "signal": ev.signal, "attributes": dict(ev.attributes),
              "scope": ev.scope, "delta": ev.delta, "window_seconds": ev.window_seconds}
             for f in findings for ev in f.evidence])
    attrs.update(e.identity.attributes())
    return attrs


def make_log_emitter(logger_provider: Any = None) -> Any:
    """An OTel logs-API logger if this API version has one (it is experimental), else None."""
    try:
        from opentelemetry import _logs
    except ImportError:
        return None
    provider = logger_provider or _logs.get_logger_provider()
    return provider.get_logger("otel_netreceiver_sdk")


def publish(e: Explanation, otel_logger: Any) -> None:
    """Attach to the current span (if recording) and emit one log record."""
    attrs = event_attributes(e)
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(EVENT_NAME, attributes=attrs)
    if otel_logger is None:
        log.warning("%s", e.summary, extra={"otel_netreceiver": attrs})
        return
    from opentelemetry._logs import LogRecord, SeverityNumber

    otel_logger.emit(LogRecord(body=e.summary, attributes=attrs, severity_text="WARN",
                               severity_number=SeverityNumber.WARN))
