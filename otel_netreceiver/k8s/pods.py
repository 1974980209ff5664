"""Pod metadata of this node from the Kubernetes API: one LIST, then a WATCH, forever.

Only pods of this node are asked for (field selector ``spec.nodeName``): a
DaemonSet that lists every pod of the cluster from every node is a classic API
server load problem (EKS control-plane guide, docs/background.md "Sources").
The protocol (paged LIST from the watch cache, WATCH resumed from the last
version seen, 410 Gone re-lists, backoff with jitter) is ``k8s/listwatch.py``'s.
Objects stay raw dicts: the client's model classes cost more than the few
fields used here.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable
from typing import Any

from otel_netreceiver.k8s.directory import PodMeta
from otel_netreceiver.k8s.listwatch import (
    REQUEST_TIMEOUT_S,
    WATCH_TIMEOUT_S,
    ListWatcher,
    ListWatchStats,
)

FINISHED = ("Succeeded", "Failed")


def pod_meta(obj: dict[str, Any]) -> PodMeta | None:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    uid = meta.get("uid")
    if not uid:
        return None
    labels = tuple(sorted((meta.get("labels") or {}).items()))
    ips = tuple(p["ip"] for p in status.get("podIPs") or () if p.get("ip"))
    ip = status.get("podIP", "") or ""
    return PodMeta(uid, meta.get("name", ""), meta.get("namespace", ""), ip, labels,
                   bool((obj.get("spec") or {}).get("hostNetwork")), ips or ((ip,) if ip else ()),
                   status.get("phase", "") or "")


class PodWatcher:
    """A PodDirectory fed by list+watch on a background thread."""

    def __init__(self, node_name: str, api_factory: Callable[[], Any],
                 rng: random.Random | None = None, backoff_base: float = 1.0,
                 request_timeout: float = REQUEST_TIMEOUT_S,
                 watch_timeout: int = WATCH_TIMEOUT_S) -> None:
        selector = f"spec.nodeName={node_name}"
        self._pods: dict[str, PodMeta] = {}
        self._lock = threading.Lock()
        self._watch = ListWatcher(
            "pod", lambda api: functools.partial(api.list_pod_for_all_namespaces,
                                                 field_selector=selector),
            api_factory, self._replace, self._apply, rng=rng, backoff_base=backoff_base,
            request_timeout=request_timeout, watch_timeout=watch_timeout)

    @property
    def stats(self) -> ListWatchStats:
        return self._watch.stats

    # --- PodDirectory ----------------------------------------------------------
    def get(self, uid: str) -> PodMeta | None:
        with self._lock:
            return self._pods.get(uid)

    def by_ip(self, ip: str) -> PodMeta | None:
        """The running pod of this node with that IP (the node API's TCP callers)."""
        with self._lock:
            return next((p for p in self._pods.values()
                         if ip in p.ips and p.phase not in FINISHED), None)

    def addresses(self) -> tuple[str, ...]:
        """The IPs of this node's running pods with their own network (traffic by peer: these
        addresses are on this node)."""
        with self._lock:
            return tuple(sorted({ip for p in self._pods.values() if not p.host_network
                                 and p.phase not in FINISHED for ip in p.ips}))

    def count(self) -> int:
        with self._lock:
            return len(self._pods)

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._watch.start()

    def stop(self) -> None:
        self._watch.stop()

    def _replace(self, items: list[dict[str, Any]]) -> None:
        pods = {m.uid: m for m in (pod_meta(item) for item in items) if m}
        with self._lock:
            self._pods = pods  # replaces everything: pods deleted while we were away are gone

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        meta = pod_meta(obj)
        if meta is None:
            return
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(meta.uid, None)
            else:
                self._pods[meta.uid] = meta
