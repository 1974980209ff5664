"""The latest DNS failure events of each pod, kept for the node API (docs/node-api.md).

DNS_TIMEOUT and DNS_LATE_ANSWER records go to the OTLP log pipeline and are gone from
the agent; a pod that asks "why did my lookup fail?" a moment later needs the one that
matches its error (when the query left, when the answer came, the timeout it had). This
ring keeps a few per pod: bounded (``per_pod`` events for at most ``max_pods`` pods),
every event it loses counted by reason, and a pod's events dropped when its namespace
is gone (``live``: the agent's namespace walk).

The node API reads events through ``DnsEvidenceEvent``, not the event record, so the
record's layout can change without touching the API: ``from_event`` is the one adapter.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass

from otel_netreceiver.events.model import Endpoint, Event

TIMEOUT, LATE = "DNS_TIMEOUT", "DNS_LATE_ANSWER"
KINDS = {TIMEOUT: "timeout", LATE: "late_answer"}
DEFAULT_TIMEOUT_NS = 5 * 10**9  # resolv.conf's default "options timeout:"
DNS_PORT = 53


@dataclass(frozen=True, slots=True)
class DnsEvidenceEvent:
    """One failed query of one pod, as the node API shows it to that pod."""

    kind: str  # timeout | late_answer
    pod_uid: str
    client: Endpoint | None  # the pod's socket
    server: Endpoint | None  # the resolver it asked
    query_name: str
    sent_unix_nano: int  # when the query left the pod
    answered_unix_nano: int  # when the (late) answer came back; 0: none
    timeout_ns: int  # the pod's resolver timeout
    late_reason: str = ""  # after_timeout | no_socket (late answers)
    server_received: bool | None = None  # did the resolver pod get it (None: not known)

    @property
    def event_unix_nano(self) -> int:
        """When the event happened: the answer's arrival, or the timeout's expiry."""
        return self.answered_unix_nano or self.sent_unix_nano + self.timeout_ns

    def as_dict(self) -> dict[str, object]:
        def ep(e: Endpoint | None) -> dict[str, object] | None:
            return None if e is None else {"address": e.address, "port": e.port}

        return {"type": self.kind, "query_name": self.query_name, "client": ep(self.client),
                "server": ep(self.server), "sent_unix_nano": self.sent_unix_nano,
                "answered_unix_nano": self.answered_unix_nano or None,
                "timeout_seconds": self.timeout_ns / 1e9, "late_reason": self.late_reason,
                "server_received": self.server_received}


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _sent(event: Event, own: dict[str, str], timeout: int) -> int:
    """When the query left, in Unix time: the record's ``dns.query.time_unix_nano`` (the dns
    probe converts the kernel's monotonic clock as it converts the record's time), else from
    monotonic differences against the event's Unix time (older records)."""
    sent = _int(own.get("dns.query.time_unix_nano"))
    if sent:
        return sent
    query, answer = _int(own.get("dns.query.time_ns")), _int(own.get("dns.answer.time_ns"))
    if query and answer:
        return event.time_unix_nano - (answer - query)
    latency = _int(own.get("latency.ns"))  # a timeout found by the sweep: now - sent
    return event.time_unix_nano - (latency or timeout)


def from_event(event: Event) -> DnsEvidenceEvent | None:
    """The adapter from a dns probe event (DNS_TIMEOUT / DNS_LATE_ANSWER, events.c).

    Fields read: ``pod``'s k8s.pod.uid; ``source``/``destination`` (swapped when the
    source is port 53: an answer's direction); attributes ``dns.question.name``,
    ``dns.timeout.ns``, ``dns.query.time_unix_nano`` (or ``dns.query.time_ns`` and
    ``dns.answer.time_ns``, monotonic), ``latency.ns``; the late reason from ``reason``
    (after_timeout, no_socket); ``dns.server.received`` ("true"/"false") when a record says
    whether the resolver pod got the query. A late answer's event time is the answer's arrival.
    """
    kind = KINDS.get(event.name)
    uid = dict(event.pod).get("k8s.pod.uid")
    if kind is None or not uid:
        return None
    own = dict(event.attributes)
    client, server = event.source, event.destination
    if client is not None and client.port == DNS_PORT and (server is None
                                                           or server.port != DNS_PORT):
        client, server = server, client
    timeout = _int(own.get("dns.timeout.ns")) or DEFAULT_TIMEOUT_NS
    late = kind == "late_answer"
    received = own.get("dns.server.received")
    return DnsEvidenceEvent(kind, str(uid), client, server,
                            str(own.get("dns.question.name", "")), _sent(event, own, timeout),
                            event.time_unix_nano if late else 0, timeout,
                            (event.reason or own.get("dns.late.reason", "")) if late else "",
                            None if received is None else received == "true")


class RecentDnsEvents:
    """Per pod, the latest ``per_pod`` DNS failure events; thread-safe (the events
    thread adds, node-API threads read)."""

    def __init__(self, per_pod: int = 16, max_pods: int = 512,
                 live: Callable[[], Collection[str]] | None = None,
                 prune_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_pod < 1 or max_pods < 1:
            raise ValueError(f"recent DNS events: per_pod ({per_pod}) and max_pods "
                             f"({max_pods}) must be at least 1")
        self.per_pod, self.max_pods = per_pod, max_pods
        self._live, self._prune_every, self._clock = live, prune_every, clock
        self._rings: dict[str, deque[DnsEvidenceEvent]] = {}
        self._lock = threading.Lock()
        self._pruned = clock()
        self.kept = 0
        self.dropped: Counter[str] = Counter()  # reason → events lost

    def observe(self, event: Event) -> None:
        """The event sink's tap: keep DNS failure events, ignore the rest."""
        if event.name in KINDS:
            found = from_event(event)
            if found is not None:
                self.add(found)

    def add(self, event: DnsEvidenceEvent) -> None:
        self._maybe_prune()
        with self._lock:
            ring = self._rings.get(event.pod_uid)
            if ring is None:
                if len(self._rings) >= self.max_pods:
                    self._evict_quietest()
                ring = self._rings[event.pod_uid] = deque(maxlen=self.per_pod)
            if len(ring) == self.per_pod:
                self.dropped["overwritten"] += 1
            ring.append(event)
            self.kept += 1

    def _evict_quietest(self) -> None:
        """Make room for a new pod: the pod whose latest event is oldest goes."""
        uid = min(self._rings, key=lambda u: self._rings[u][-1].event_unix_nano)
        self.dropped["too_many_pods"] += len(self._rings.pop(uid))

    def forget(self, pod_uid: str) -> None:
        with self._lock:
            self._rings.pop(pod_uid, None)

    def retain(self, live: Collection[str]) -> None:
        """Drop the events of pods that are no longer on the node."""
        with self._lock:
            for uid in [u for u in self._rings if u not in live]:
                self.dropped["pod_gone"] += len(self._rings.pop(uid))

    def _maybe_prune(self) -> None:
        if self._live is None or self._clock() - self._pruned < self._prune_every:
            return
        self._pruned = self._clock()
        self.retain(set(self._live()))

    def latest(self, pod_uid: str, start_unix_nano: int, end_unix_nano: int,
               limit: int = 5) -> list[DnsEvidenceEvent]:
        """The pod's events that happened in the window (sent or ended in it), newest first."""
        self._maybe_prune()
        with self._lock:
            ring = list(self._rings.get(pod_uid, ()))
        inside = [e for e in ring if start_unix_nano <= e.event_unix_nano <= end_unix_nano
                  or start_unix_nano <= e.sent_unix_nano <= end_unix_nano]
        return sorted(inside, key=lambda e: e.event_unix_nano, reverse=True)[:limit]

    def pods(self) -> int:
        with self._lock:
            return len(self._rings)
