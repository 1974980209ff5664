"""Who a network namespace belongs to: a pod (via its processes' cgroups), the host, or other.

No CRI socket: the kubelet names pod cgroups after the pod UID for every runtime
(k8s/cgroup.py). Pod name and namespace come from a PodDirectory (the Kubernetes
watch, or nothing off Kubernetes, in which case the UID and the first process's
command name identify the namespace).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from otel_netreceiver.k8s.cgroup import CgroupLine, parse_proc_cgroup, pod_from_path
from otel_netreceiver.model import Attributes, attrs
from otel_netreceiver.netns.discovery import Namespace, discover, netns_inode

MAX_PIDS_PROBED = 4  # the pause/infra process is normally first; a few more cover odd runtimes


@dataclass(frozen=True, slots=True)
class PodMeta:
    uid: str
    name: str
    namespace: str
    ip: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    host_network: bool = False  # shares the node's addresses: never identified by IP
    ips: tuple[str, ...] = ()  # status.podIPs (dual stack); ip is the first
    phase: str = ""  # a finished pod's IP may already belong to a new pod


class PodDirectory(Protocol):
    def get(self, uid: str) -> PodMeta | None: ...


class NoPods:
    """Off Kubernetes: no metadata beyond what cgroups say."""

    def get(self, uid: str) -> PodMeta | None:
        return None

    def by_ip(self, ip: str) -> PodMeta | None:
        return None


@dataclass(frozen=True, slots=True)
class NetnsIdentity:
    kind: str  # pod | host | other
    pod_uid: str
    command: str
    cgroups: tuple[CgroupLine, ...]  # of the process that identified it (for cpu.stat)

    def attributes(self, inode: int, directory: PodDirectory, verbose: bool = False,
                   label_keys: tuple[str, ...] = ()) -> Attributes:
        values: dict[str, object] = {"netns.inode": inode, "netns.kind": self.kind}
        if self.kind == "pod":
            values["k8s.pod.uid"] = self.pod_uid
            meta = directory.get(self.pod_uid)
            if meta is not None:
                values["k8s.pod.name"], values["k8s.namespace.name"] = meta.name, meta.namespace
                if verbose:
                    values["k8s.pod.ip"] = meta.ip or None
                    labels = dict(meta.labels)
                    values.update({f"k8s.pod.label.{k}": labels.get(k) for k in label_keys})
        elif self.kind == "other":
            values["process.command"] = self.command
        return attrs(values)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def identify(proc_root: str, ns: Namespace, host_inode: int | None) -> NetnsIdentity:
    """Look at the namespace's first few processes; the first in a pod cgroup decides."""
    command = _read(f"{proc_root}/{ns.pid}/comm").strip()
    first: tuple[CgroupLine, ...] = ()
    for pid in ns.pids[:MAX_PIDS_PROBED]:
        lines = parse_proc_cgroup(_read(f"{proc_root}/{pid}/cgroup"))
        first = first or lines
        for line in sorted(lines, key=lambda line: line.hierarchy != "0"):
            pod = pod_from_path(line.path)
            if pod is not None:
                return NetnsIdentity("pod", pod.pod_uid, command, lines)
    kind = "host" if ns.inode == host_inode else "other"
    return NetnsIdentity(kind, "", command, first)


class NetnsResolver:
    """The node's namespaces and who owns each, cached per (inode, pid) across cycles.

    Shared by the per-pod collector and the eBPF collector (whose kernel maps are keyed
    by namespace inode), so both attribute a namespace the same way.
    """

    def __init__(self, proc_root: str, directory: PodDirectory, verbose: bool = False,
                 label_keys: tuple[str, ...] = ()) -> None:
        self._proc_root, self._directory = proc_root, directory
        self._verbose, self._label_keys = verbose, label_keys
        self._cache: dict[int, tuple[int, NetnsIdentity]] = {}
        # inode → (identity, pod metadata, attributes): rebuilt only when either changes
        self._attributes: dict[int, tuple[NetnsIdentity, PodMeta | None, Attributes]] = {}

    def host_inode(self) -> int | None:
        """The node's namespace: PID 1's, or else the agent's own.

        The DaemonSet runs with hostNetwork (the ENA ioctl needs the host namespace), so
        the agent's namespace is the node's when PID 1's link cannot be read (some
        sandboxes deny it, as this project's test machine does).
        """
        for pid in ("1", "self"):
            try:
                return netns_inode(os.readlink(f"{self._proc_root}/{pid}/ns/net"))
            except OSError:
                continue
        return None

    def resolve(self) -> dict[int, tuple[Namespace, NetnsIdentity]]:
        """inode → (namespace, identity) for every namespace alive now; the dead are forgotten."""
        host, fresh = self.host_inode(), {}
        result = {}
        for inode, ns in discover(self._proc_root).items():
            cached = self._cache.get(inode)
            identity = cached[1] if cached and cached[0] == ns.pid else identify(
                self._proc_root, ns, host)
            fresh[inode] = (ns.pid, identity)
            result[inode] = (ns, identity)
        self._cache = fresh
        self._attributes = {k: v for k, v in self._attributes.items() if k in fresh}
        return result

    def attributes(self, inode: int, identity: NetnsIdentity) -> Attributes:
        """The namespace's attributes, rebuilt only when its identity or pod metadata changed
        (sorting them for every namespace every cycle showed in the per-pod benchmark)."""
        meta = self._directory.get(identity.pod_uid) if identity.kind == "pod" else None
        held = self._attributes.get(inode)
        if held is not None and held[0] is identity and held[1] == meta:
            return held[2]
        attributes = identity.attributes(inode, self._directory, self._verbose, self._label_keys)
        self._attributes[inode] = (identity, meta, attributes)
        return attributes
