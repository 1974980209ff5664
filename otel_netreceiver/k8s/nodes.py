"""The cluster's nodes, their zones and addresses, from one cluster-wide watch of Node objects.

Traffic by peer needs to know which zone a peer address is in. Nodes carry their
zone in the well-known label ``topology.kubernetes.io/zone`` (Kubernetes
documentation, "Well-Known Labels, Annotations and Taints"; the deprecated
``failure-domain.beta.kubernetes.io/zone`` on old nodes) and their addresses in
``status.addresses`` and ``spec.podCIDRs``. Nodes are few (one object per
machine) where pods are many, so this watches Node objects of the whole cluster
and never pods outside this node. Only the few fields used are kept; a Node
update that changes none of them (the kubelet's periodic status) changes nothing.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otel_netreceiver.k8s.listwatch import ListWatcher, ListWatchStats

ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    zone: str  # "" when the node has no zone label
    addresses: tuple[str, ...]  # InternalIP addresses (both families on dual-stack nodes)
    pod_cidrs: tuple[str, ...]  # spec.podCIDRs (empty with the VPC CNI: pods use VPC addresses)


def node_info(obj: dict[str, Any]) -> NodeInfo | None:
    meta, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    name = meta.get("name")
    if not name:
        return None
    labels = meta.get("labels") or {}
    zone = next((labels[k] for k in ZONE_LABELS if labels.get(k)), "")
    addresses = tuple(a["address"] for a in status.get("addresses") or ()
                      if a.get("type") == "InternalIP" and a.get("address"))
    cidrs = tuple(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else ()))
    return NodeInfo(name, zone, addresses, cidrs)


class NodeWatcher:
    """Every node of the cluster, by name; ``generation`` moves only when what is kept changes."""

    def __init__(self, api_factory: Callable[[], Any], rng: random.Random | None = None,
                 backoff_base: float = 1.0, **options: Any) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._lock = threading.Lock()
        self.generation = 0
        self._watch = ListWatcher("node", lambda api: api.list_node, api_factory,
                                  self._replace, self._apply, rng=rng,
                                  backoff_base=backoff_base, **options)

    @property
    def stats(self) -> ListWatchStats:
        return self._watch.stats

    def nodes(self) -> tuple[NodeInfo, ...]:
        with self._lock:
            return tuple(sorted(self._nodes.values(), key=lambda n: n.name))

    def get(self, name: str) -> NodeInfo | None:
        with self._lock:
            return self._nodes.get(name)

    def start(self) -> None:
        self._watch.start()

    def stop(self) -> None:
        self._watch.stop()

    def _replace(self, items: list[dict[str, Any]]) -> None:
        nodes = {n.name: n for n in (node_info(item) for item in items) if n}
        with self._lock:
            if nodes != self._nodes:  # nodes deleted while we were away are gone
                self._nodes = nodes
                self.generation += 1

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        node = node_info(obj)
        if node is None:
            return
        with self._lock:
            if kind == "DELETED":
                changed = self._nodes.pop(node.name, None) is not None
            else:
                changed = self._nodes.get(node.name) != node
                self._nodes[node.name] = node
            self.generation += changed
