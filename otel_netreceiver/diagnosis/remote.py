"""A Prometheus-compatible query API as a diagnosis source (remote mode).

The same rules as local mode, read from the cluster's metrics store: Prometheus over
plain HTTP, or Amazon Managed Service for Prometheus with SigV4-signed requests. Each
condition is one instant query (``/api/v1/query``) at the window's end; promql.py
writes it, this module sends it and turns the result vector into Evidence.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from otel_netreceiver.diagnosis import promql
from otel_netreceiver.diagnosis.model import Condition, Evidence, Question
from otel_netreceiver.diagnosis.sigv4 import Credentials, sign
from otel_netreceiver.model import Attributes


class RemoteError(RuntimeError):
    """The query API could not be reached or refused a query (names the URL and the query)."""


def _query_string(params: dict[str, str]) -> str:
    # encoded exactly as SigV4's canonical query encodes it, so the signed string is the sent one
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                    for k, v in sorted(params.items()))


class QueryClient:
    """GET ``<base>/api/v1/query``; signed for AMP when a region and credentials are given."""

    def __init__(self, base_url: str, *, region: str = "",
                 credentials: Credentials | Callable[[], Credentials] | None = None,
                 timeout: float = 30.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--prometheus {base_url!r}: not an http(s) URL")
        if region and credentials is None:
            raise ValueError("SigV4 signing needs credentials")
        self._base = base_url.rstrip("/")
        self._region, self._credentials = region, credentials
        self._timeout, self._clock = timeout, clock
        # a proxy from the environment must not see (or divert) the workspace's queries
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        url = f"{self._base}/api/v1/query?{_query_string({'query': expr, 'time': f'{at:.3f}'})}"
        headers = {"Accept": "application/json"}
        if self._region and self._credentials is not None:
            # a source is asked every time: temporary credentials rotate under a long run
            credentials = (self._credentials if isinstance(self._credentials, Credentials)
                           else self._credentials())
            headers = sign("GET", url, headers, b"", region=self._region,
                           credentials=credentials, now=self._clock())
            headers.pop("Host", None)  # urllib sends the same Host itself
        try:
            with self._opener.open(urllib.request.Request(url, headers=headers),
                                   timeout=self._timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"{self._base}: HTTP {exc.code} for {expr!r}: "
                              f"{_error_text(exc.read())}") from None
        except (OSError, ValueError) as exc:
            raise RemoteError(f"{self._base}: {exc}") from None
        if body.get("status") != "success" or body.get("data", {}).get("resultType") != "vector":
            raise RemoteError(f"{self._base}: query {expr!r} failed: {body.get('error', body)}")
        return list(body["data"]["result"])


def _error_text(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("error", raw[:200]))
    except ValueError:
        return raw[:200].decode(errors="replace")


class PrometheusSource:
    """Source + PodListing over a query API, for one node (``target.node``) or the cluster.

    ``diagnose`` asks each pod the same pod-scope conditions; they are answered by one
    query per condition for all pods (cached for that question's window), so a cluster
    of N pods costs as many queries as one pod, not N times as many. Answers are kept
    per expression and time too: rules that share a condition share its query. A source
    is meant for one diagnose run (nothing is ever evicted).
    """

    def __init__(self, client: QueryClient, target: promql.Target | None = None) -> None:
        self._client, self._target = client, target or promql.Target()
        self._batches: dict[tuple, dict[str, list[Evidence]]] = {}
        self._answers: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.queries = 0  # sent so far (the benchmark and the tests read it)

    @property
    def client(self) -> QueryClient:
        return self._client

    def _query(self, expr: str, question: Question) -> list[dict[str, Any]]:
        key = (expr, question.end_unix_nano)
        if key not in self._answers:
            self.queries += 1
            self._answers[key] = self._client.query(expr, question.end_unix_nano / 1e9)
        return self._answers[key]

    def _evidence(self, condition: Condition, question: Question,
                  rows: list[dict[str, Any]]) -> list[tuple[str, Evidence]]:
        signal, out = condition.signal, []
        for row in rows:
            value = float(row["value"][1])
            if not math.isfinite(value):  # 0/0 of a ratio, a histogram with no observations
                continue
            labels = {k: v for k, v in row["metric"].items() if k != "__name__"}
            out.append((labels.get(promql.POD_LABEL, ""),
                        Evidence(signal.metric, signal.scope.value,
                                 promql.attributes_back(signal, labels), value,
                                 question.seconds, condition.op.value)))
        return out

    def evaluate(self, condition: Condition, question: Question) -> list[Evidence]:
        if not promql.batched(condition.signal, question):
            expr = promql.expression(condition, question, self._target)
            return [e for _, e in self._evidence(condition, question,
                                                 self._query(expr, question))]
        key = (condition, question.start_unix_nano, question.end_unix_nano, question.namespace)
        if key not in self._batches:
            expr = promql.expression(condition, question, self._target, batch=True)
            per_pod: dict[str, list[Evidence]] = {}
            for uid, evidence in self._evidence(condition, question, self._query(expr, question)):
                per_pod.setdefault(uid, []).append(evidence)
            self._batches[key] = per_pod
        return list(self._batches[key].get(question.pod_uid, []))

    def pods(self, question: Question) -> list[Attributes]:
        rows = self._query(promql.pods_expression(question, self._target), question)
        found = {}
        for row in rows:
            labels = row["metric"]
            identity = tuple(sorted((key, labels[label]) for key, label in (
                ("k8s.pod.uid", "k8s_pod_uid"), ("k8s.pod.name", "k8s_pod_name"),
                ("k8s.namespace.name", "k8s_namespace_name")) if labels.get(label)))
            found[labels["k8s_pod_uid"]] = identity
        return [found[uid] for uid in sorted(found)]
