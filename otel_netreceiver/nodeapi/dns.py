"""The "dns" part of a correlation answer: the asking pod's own DNS evidence for the window.

From the dns probe's per-pod counters in the agent's history (the same change points the
rules read, window deltas, client side only: what the pod sent and got back) and the
latest DNS failure events of that pod (events/recent.py). Only the caller's pod is ever
read: the history selector matches its UID, the ring is keyed by it. When the probe is
off the answer says so, so "no timeouts" is never confused with "not measured".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otel_netreceiver.events.recent import RecentDnsEvents
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Attributes
from otel_netreceiver.nodeapi.callers import POD, Caller

QUERIES, RESPONSES = "netreceiver.pod.dns.queries", "netreceiver.pod.dns.responses"
TIMEOUTS, LATE = "netreceiver.pod.dns.timeouts", "netreceiver.pod.dns.late_answers"
METRICS = (QUERIES, RESPONSES, TIMEOUTS, LATE)  # what the history must keep for this
CLASS = "dns.resolver.class"
MAX_EVENTS = 5


def _client_of(uid: str) -> Callable[[Attributes], bool]:
    def match(attributes: Attributes) -> bool:
        have = dict(attributes)
        return have.get("k8s.pod.uid") == uid and have.get("dns.role", "client") == "client"
    return match


def _empty() -> dict[str, Any]:
    return {"queries": 0, "answered": 0, "timeouts": 0, "late_answers": 0,
            "responses": {}, "late": {}}


def _add(row: dict[str, Any], metric: str, attributes: dict[str, str], delta: int) -> None:
    if metric == QUERIES:
        row["queries"] += delta
    elif metric == RESPONSES:
        row["answered"] += delta
        code = attributes.get("dns.response.code", "other")
        row["responses"][code] = row["responses"].get(code, 0) + delta
    elif metric == TIMEOUTS:
        row["timeouts"] += delta
    else:
        row["late_answers"] += delta
        reason = attributes.get("dns.late.reason", "other")
        row["late"][reason] = row["late"].get(reason, 0) + delta


def counts(history: History, pod_uid: str, start: int, end: int) -> dict[str, Any]:
    """Totals and per resolver class of the pod's client-side DNS counters in the window."""
    total, by_class = _empty(), {}
    for metric in METRICS:
        for window in history.windows(metric, _client_of(pod_uid), start, end):
            delta = int(window.delta)
            if delta <= 0:
                continue
            attributes = dict(window.attributes)
            rclass = attributes.get(CLASS, "other")
            _add(total, metric, attributes, delta)
            _add(by_class.setdefault(rclass, _empty()), metric, attributes, delta)
    return {**total, "by_resolver_class": dict(sorted(by_class.items()))}


class DnsEvidence:
    """Binds the history, the probe's state and the events ring for the correlator.

    ``probe_off`` returns why the dns probe is not counting ("" when it is).
    """

    def __init__(self, history: History, probe_off: Callable[[], str],
                 recent: RecentDnsEvents | None = None) -> None:
        self._history, self._probe_off, self._recent = history, probe_off, recent

    def __call__(self, caller: Caller, start: int, end: int) -> dict[str, Any]:
        if caller.kind != POD:
            return {"status": "no_pod", "detail": "a host-network caller has no pod of its "
                    "own: DNS evidence is per pod"}
        off = self._probe_off()
        events = (self._recent.latest(caller.pod_uid, start, end, MAX_EVENTS)
                  if self._recent is not None else [])
        out: dict[str, Any] = {"status": "probe_off" if off else "ok", "detail": off}
        if not off:
            out.update(counts(self._history, caller.pod_uid, start, end))
        out["events"] = [e.as_dict() for e in events]
        return out


def probe_off_reason(ebpf: bool, listed: bool, statuses: dict[str, str] | None) -> str:
    """Why the dns probe is not counting: not configured, or not loaded (and why)."""
    if not ebpf:
        return "dns probe not enabled (collectors.ebpf.enabled is false)"
    if not listed:
        return "dns probe not enabled (collectors.ebpf.probes does not list dns)"
    if statuses is None:
        return "dns probe not enabled (the ebpf collector is not running)"
    reason = statuses.get("dns")
    if reason is None:
        return "dns probe not enabled (not loaded)"
    return f"dns probe not enabled (unavailable: {reason})" if reason else ""
