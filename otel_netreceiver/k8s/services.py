"""The cluster's Services and their ClusterIPs, from one cluster-wide watch of Service objects.

A pod that talks to a Service sends to its ClusterIP: the pod's socket (where the peers probe
counts, cgroup_skb) sees the ClusterIP as destination and, on replies, as source; kube-proxy
rewrites it to a backend later, in the host's namespace. ClusterIPs sit in a private range, so
without this they would be classed other_vpc. Services are few next to pods, so the agent
watches Service objects of the whole cluster (RBAC get/list/watch on services) and keeps only
namespace, name and ClusterIPs (``spec.clusterIPs``, both families on dual-stack Services;
``spec.clusterIP`` on old servers). Headless Services (``None``) have no ClusterIP and their
addresses are the pods' own: they are left out. ExternalName Services have none either.
"""

from __future__ import annotations

import ipaddress
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_netreceiver.k8s.listwatch import ListWatcher, ListWatchStats


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    namespace: str
    name: str
    cluster_ips: tuple[str, ...]  # IPv4 and/or IPv6; never empty for a kept Service

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _ips(spec: dict[str, Any]) -> tuple[str, ...]:
    texts = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    out = []
    for text in texts:
        try:  # "None" (headless) and anything malformed are not addresses
            out.append(str(ipaddress.ip_address(text)))
        except ValueError:
            continue
    return tuple(dict.fromkeys(out))


def service_info(obj: dict[str, Any]) -> ServiceInfo | None:
    """The kept fields; None without a name. A Service without a ClusterIP keeps none."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    name = meta.get("name")
    if not name:
        return None
    return ServiceInfo(meta.get("namespace") or "default", name, _ips(spec))


class ServiceWatcher:
    """Every Service with a ClusterIP, by namespace/name; ``generation`` moves on change."""

    def __init__(self, api_factory: Callable[[], Any], rng: random.Random | None = None,
                 backoff_base: float = 1.0, **options: Any) -> None:
        self._services: dict[str, ServiceInfo] = {}
        self._lock = threading.Lock()
        self.generation = 0
        self._watch = ListWatcher("service", lambda api: api.list_service_for_all_namespaces,
                                  api_factory, self._replace, self._apply, rng=rng,
                                  backoff_base=backoff_base, **options)

    @property
    def stats(self) -> ListWatchStats:
        return self._watch.stats

    def services(self) -> tuple[ServiceInfo, ...]:
        with self._lock:
            return tuple(sorted(self._services.values(), key=lambda s: s.key))

    def start(self) -> None:
        self._watch.start()

    def stop(self) -> None:
        self._watch.stop()

    def _replace(self, items: list[dict[str, Any]]) -> None:
        kept = (service_info(item) for item in items)
        services = {s.key: s for s in kept if s is not None and s.cluster_ips}
        with self._lock:
            if services != self._services:  # Services deleted while we were away are gone
                self._services = services
                self.generation += 1

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        service = service_info(obj)
        if service is None:
            return
        with self._lock:
            if kind == "DELETED" or not service.cluster_ips:
                changed = self._services.pop(service.key, None) is not None
            else:
                changed = self._services.get(service.key) != service
                self._services[service.key] = service
            self.generation += changed
