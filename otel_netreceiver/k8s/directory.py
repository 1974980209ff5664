"""What the agent knows about a pod besides its UID, and where it looks it up.

The UID comes from the kernel (a process's cgroup path, k8s/cgroup.py); name, namespace,
addresses and labels come from a PodDirectory: the Kubernetes watch (k8s/pods.py), or
NoPods off Kubernetes, where the cgroup UID is all there is. Kept apart from any collector
so the per-pod collector, the eBPF collectors, kernel events and the node API all read the
same record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PodMeta:
    """One pod of this node as the API server describes it."""

    uid: str
    name: str
    namespace: str
    ip: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    host_network: bool = False  # shares the node's addresses: never identified by IP
    ips: tuple[str, ...] = ()  # status.podIPs (dual stack); ip is the first
    phase: str = ""  # a finished pod's IP may already belong to a new pod


class PodDirectory(Protocol):
    """Pod UID → metadata; None when the pod is not (or not yet) known."""

    def get(self, uid: str) -> PodMeta | None: ...


class NoPods:
    """Off Kubernetes: no metadata beyond what cgroups say."""

    def get(self, uid: str) -> PodMeta | None:
        return None

    def by_ip(self, ip: str) -> PodMeta | None:
        return None

    def addresses(self) -> tuple[str, ...]:
        return ()
