"""The node's DNS evidence for this pod (the answer's "dns" part) and the sentence it makes.

For a failed lookup the agent sends what its dns probe counted for this pod in the window
and the latest DNS failure events it kept for it (docs/node-api.md). The sentence names
the query whose timeout expired nearest the error: its late answer ("the query left the
pod at T, the resolver pod answered at T+5.2 s, after your 5 s timeout"), else its
timeout ("no answer within 5 s"); without events, the counts. A field of the wrong type
raises ValueError naming it, which ``parse_answer`` turns into its ``AnswerError``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# a timeout and a late answer of one query: their send times, derived from two records'
# clocks, differ by microseconds; two queries of a retrying client, by the timeout at least
SAME_QUERY_NS = 50_000_000


@dataclass(frozen=True, slots=True)
class DnsEvent:
    kind: str  # timeout | late_answer
    query_name: str
    server: str  # "address:port" of the resolver, "" unknown
    sent_unix_nano: int
    answered_unix_nano: int  # 0: no answer
    timeout_s: float
    late_reason: str
    server_received: bool | None


@dataclass(frozen=True, slots=True)
class DnsEvidence:
    status: str  # ok | probe_off | no_pod
    detail: str
    queries: int
    answered: int
    timeouts: int
    late_answers: int
    responses: tuple[tuple[str, int], ...]
    late: tuple[tuple[str, int], ...]
    events: tuple[DnsEvent, ...]


def _int(obj: dict, key: str, where: str) -> int:
    value = obj.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}.{key}: expected a number, got {type(value).__name__}")
    return int(value)


def _pairs(obj: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(obj, dict):
        return ()
    return tuple(sorted((str(k), int(v)) for k, v in obj.items()
                        if isinstance(v, int | float) and not isinstance(v, bool)))


def _event(obj: Any, where: str) -> DnsEvent:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got {type(obj).__name__}")
    server = obj.get("server") if isinstance(obj.get("server"), dict) else {}
    where_to = f"{server.get('address')}:{server.get('port')}" if server else ""
    received = obj.get("server_received")
    return DnsEvent(str(obj.get("type", "")), str(obj.get("query_name", "")), where_to,
                    _int(obj, "sent_unix_nano", where), _int(obj, "answered_unix_nano", where),
                    float(obj.get("timeout_seconds") or 0.0), str(obj.get("late_reason") or ""),
                    received if isinstance(received, bool) else None)


def parse_dns(obj: Any) -> DnsEvidence | None:
    """The answer's "dns" object (None when the agent sent none)."""
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise ValueError(f"dns: expected an object, got {type(obj).__name__}")
    events = obj.get("events") if isinstance(obj.get("events"), list) else []
    return DnsEvidence(
        str(obj.get("status", "")), str(obj.get("detail", "")),
        _int(obj, "queries", "dns"), _int(obj, "answered", "dns"),
        _int(obj, "timeouts", "dns"), _int(obj, "late_answers", "dns"),
        _pairs(obj.get("responses")), _pairs(obj.get("late")),
        tuple(_event(e, f"dns.events[{i}]") for i, e in enumerate(events)))


def _clock(unix_nano: int) -> str:
    """A wall-clock time to the millisecond, UTC (the pod's and the node's clock agree)."""
    seconds, nanos = divmod(unix_nano, 10**9)
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) + f".{nanos // 10**6:03d} UTC"


def _seconds(value: float) -> str:
    return f"{value:g}"


def best_event(evidence: DnsEvidence, at_unix_nano: int) -> DnsEvent | None:
    """The event whose timeout expired nearest the error (the failed lookup's own query,
    as far as the node can tell); for a timeout whose query was answered late after all,
    the late answer, which tells more."""
    def expiry(e: DnsEvent) -> int:
        return e.sent_unix_nano + int(e.timeout_s * 1e9)

    if not evidence.events:
        return None
    nearest = min(evidence.events, key=lambda e: abs(expiry(e) - at_unix_nano))
    if nearest.kind == "timeout":
        for e in evidence.events:
            if (e.kind == "late_answer" and e.query_name == nearest.query_name
                    and e.server == nearest.server
                    and abs(e.sent_unix_nano - nearest.sent_unix_nano) < SAME_QUERY_NS):
                return e
    return nearest


def _event_sentence(e: DnsEvent) -> str:
    name = f" for {e.query_name}" if e.query_name else ""
    lead = f"the query{name} left the pod at {_clock(e.sent_unix_nano)}"
    who = f"the resolver pod ({e.server})" if e.server else "the resolver pod"
    if e.kind == "late_answer" and e.answered_unix_nano:
        after = (e.answered_unix_nano - e.sent_unix_nano) / 1e9
        text = (f"{lead}, {who} answered at T+{after:.1f} s, after your "
                f"{_seconds(e.timeout_s)} s timeout")
        return text + (" (the socket was already closed)" if e.late_reason == "no_socket"
                       else "")
    seen = {True: f"{who} received it", False: f"{who} did not receive it",
            None: f"the node did not see whether {who} received it"}[e.server_received]
    return f"{lead}; no answer within {_seconds(e.timeout_s)} s ({seen})"


def _counts(d: DnsEvidence) -> str:
    codes = ", ".join(f"{code} {n}" for code, n in d.responses)
    text = (f"this pod sent {d.queries} DNS queries in the window: {d.answered} answered"
            + (f" ({codes})" if codes else "") + f", {d.timeouts} timed out, "
            f"{d.late_answers} answered late")
    late = ", ".join(f"{reason} {n}" for reason, n in d.late)
    return text + (f" ({late})" if late else "")


def dns_sentence(evidence: DnsEvidence | None, at_unix_nano: int) -> str:
    """What the node saw of this pod's DNS, as one clause ("" when nothing was sent)."""
    if evidence is None or evidence.status == "no_pod":
        return ""
    event = best_event(evidence, at_unix_nano)
    if event is not None:
        return _event_sentence(event)
    if evidence.status == "probe_off":
        return f"the node does not count DNS: {evidence.detail}"
    return _counts(evidence)
