"""Who a network namespace belongs to: a pod (via its processes' cgroups), the host, or other.

No CRI socket: the kubelet names pod cgroups after the pod UID for every runtime
(k8s/cgroup.py). Pod name and namespace come from a PodDirectory (the Kubernetes
watch, or nothing off Kubernetes, in which case the UID and the first process's
command name identify the namespace).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from otel_netreceiver.k8s.cgroup import CgroupLine, parse_proc_cgroup, pod_from_path
from otel_netreceiver.model import Attributes, attrs
from otel_netreceiver.netns.discovery import Namespace

MAX_PIDS_PROBED = 4  # the pause/infra process is normally first; a few more cover odd runtimes


@dataclass(frozen=True, slots=True)
class PodMeta:
    uid: str
    name: str
    namespace: str
    ip: str = ""
    labels: tuple[tuple[str, str], ...] = ()


class PodDirectory(Protocol):
    def get(self, uid: str) -> PodMeta | None: ...


class NoPods:
    """Off Kubernetes: no metadata beyond what cgroups say."""

    def get(self, uid: str) -> PodMeta | None:
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
