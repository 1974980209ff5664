"""Pod metadata of this node from the Kubernetes API: one LIST, then a WATCH, forever.

Only pods of this node are asked for (field selector ``spec.nodeName``): a
DaemonSet that lists every pod of the cluster from every node is a classic API
server load problem (EKS control-plane guide, docs/background.md "Sources").
The watch resumes from the last resourceVersion it saw when a stream ends or
drops; only 410 Gone (the version expired) costs a new LIST. Failures back off
exponentially (1 s to 60 s, with jitter) so that a restarting API server is not
stormed by every node at once. Objects stay raw
dicts: the client's model classes cost more than the few fields used here.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_netreceiver.k8s.directory import PodMeta

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 300  # the server ends each watch after this; we resume from the last version
# Client-side deadlines (connect, read). Without them a request to an API server that accepts
# and never answers (a black-holed connection, a wedged apiserver) blocks the watch thread
# forever and pod names never recover. A watch is silent for at most WATCH_TIMEOUT_S between
# events (the server ends it then), so its read deadline is that plus REQUEST_TIMEOUT_S.
REQUEST_TIMEOUT_S = 30.0


FINISHED = ("Succeeded", "Failed")


class Gone(Exception):
    """410: the resourceVersion we watch from has expired; re-list."""


@dataclass
class WatchStats:
    lists: int = 0
    watches: int = 0
    errors: int = 0
    events: int = 0
    connected: bool = False
    last_error: str = ""


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
        self._selector = f"spec.nodeName={node_name}"
        self._request_timeout, self._watch_timeout = request_timeout, watch_timeout
        self._backoff_base = backoff_base
        self._api_factory = api_factory
        self._pods: dict[str, PodMeta] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rng = rng or random.Random()
        self._watch: Any = None
        self.stats = WatchStats()
        self._thread = threading.Thread(target=self._run, name="k8s-pod-watch", daemon=True)

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
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        if self._thread.ident is not None:  # `probes` and `once` never start it
            self._thread.join(timeout=5)

    def _run(self) -> None:
        api, version, failures, gone_streak = None, None, 0, 0
        while not self._stop.is_set():
            try:
                api = api or self._api_factory()
                if version is None:
                    version = self._list(api)
                events_before = self.stats.events
                version = self._watch_from(api, version)
                failures = 0
            except Gone:
                log.info("pod watch: resourceVersion %s expired (410); listing again", version)
                version = None
                # a 410 right after a fresh list, again and again, must not become a
                # re-list storm: back off from the second consecutive one
                gone_streak = gone_streak + 1 if self.stats.events == events_before else 1
                if gone_streak > 1:
                    self._stop.wait(self._backoff(gone_streak - 1))
            except Exception as exc:  # the API server, the network, a bad answer
                failures += 1
                self._record_error(exc)
                self._stop.wait(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        base = min(60.0, self._backoff_base * 2.0 ** (failures - 1))
        return base * (0.5 + self._rng.random())

    def _record_error(self, exc: Exception) -> None:
        self.stats.errors += 1
        self.stats.connected = False
        message = f"{type(exc).__name__}: {str(exc)[:200]}"
        if message != self.stats.last_error:
            log.warning("pod watch: %s (pod names fall back to namespace identity meanwhile)",
                        message)
        self.stats.last_error = message

    # --- list and watch ----------------------------------------------------------
    def _list(self, api: Any) -> str:
        response = api.list_pod_for_all_namespaces(
            field_selector=self._selector, _preload_content=False,
            _request_timeout=(self._request_timeout, self._request_timeout))
        body = json.loads(response.data)
        pods = {m.uid: m for m in (pod_meta(item) for item in body.get("items") or []) if m}
        with self._lock:
            self._pods = pods  # replaces everything: pods deleted while we were away are gone
        self.stats.lists += 1
        self.stats.connected, self.stats.last_error = True, ""
        return str((body.get("metadata") or {}).get("resourceVersion", ""))

    def _watch_from(self, api: Any, version: str) -> str:
        from kubernetes import watch

        self._watch = watch.Watch()
        self.stats.watches += 1
        # deserialize stays on: with deserialize=False, kubernetes.watch (v37) reads
        # event["raw_object"] of ERROR events, which only the deserializing path sets,
        # and a 410 turns into a KeyError. Pod events are rare; we read raw_object.
        stream = self._watch.stream(
            api.list_pod_for_all_namespaces, field_selector=self._selector,
            resource_version=version, timeout_seconds=self._watch_timeout,
            allow_watch_bookmarks=True,
            _request_timeout=(self._request_timeout, self._watch_timeout + self._request_timeout))
        try:
            for event in stream:
                version = self._apply(event, version)
                if self._stop.is_set():
                    break
        except Exception as exc:
            # kubernetes.watch raises ApiException(410) itself for an expired version
            if getattr(exc, "status", None) == 410:
                raise Gone(str(exc)) from exc
            raise
        return version

    def _apply(self, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("raw_object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(obj.get("message", "expired"))
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
        self.stats.events += 1
        self.stats.connected, self.stats.last_error = True, ""
        meta = pod_meta(obj)
        with self._lock:
            if kind == "DELETED" and meta is not None:
                self._pods.pop(meta.uid, None)
            elif kind in ("ADDED", "MODIFIED") and meta is not None:
                self._pods[meta.uid] = meta
        return str((obj.get("metadata") or {}).get("resourceVersion") or version)
