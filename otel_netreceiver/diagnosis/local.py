"""The agent's own history as a diagnosis source (local mode)."""

from __future__ import annotations

from collections import defaultdict

from otel_netreceiver.diagnosis.model import Evidence, Question, Scope, Signal
from otel_netreceiver.history.store import History, Increase
from otel_netreceiver.model import Attributes

POD_KEYS = ("k8s.pod.uid", "netns.kind")


def _selector(signal: Signal, question: Question):
    want_uid, scope = question.pod_uid, signal.scope

    def match(attributes: Attributes) -> bool:
        if not signal.matches(attributes):
            return False
        have = dict(attributes)
        if scope is Scope.POD:
            return have.get("k8s.pod.uid") == want_uid
        if scope is Scope.HOST:
            return have.get("netns.kind") == "host"
        return True

    return match


class HistorySource:
    def __init__(self, history: History) -> None:
        self._history = history

    def increases(self, signal: Signal, question: Question) -> list[Evidence]:
        rows = self._history.increases(signal.metric, _selector(signal, question),
                                       question.start_unix_nano, question.end_unix_nano)
        return group(signal, rows)


def group(signal: Signal, rows: list[Increase]) -> list[Evidence]:
    """Sum increases per ``group_by`` values; only those (and ``match``) stay visible.

    Pod identities never leave here for ALL-scoped signals: the groups carry only the
    grouping attributes, so an aggregate cannot name another pod (docs/node-api.md).
    """
    sums: defaultdict[Attributes, float] = defaultdict(float)
    spans: dict[Attributes, float] = {}
    keep = set(signal.group_by) | {k for k, _ in signal.match}
    for row in rows:
        key = tuple((k, v) for k, v in row.attributes if k in keep)
        sums[key] += row.delta
        spans[key] = max(spans.get(key, 0.0), row.seconds)
    return [Evidence(signal.metric, signal.scope.value, key, total, spans[key])
            for key, total in sums.items()]
