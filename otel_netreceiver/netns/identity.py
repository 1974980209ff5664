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

from otel_netreceiver.k8s.cgroup import CgroupLine, parse_proc_cgroup, pod_of_process
from otel_netreceiver.k8s.directory import PodDirectory
from otel_netreceiver.model import Attributes, attrs
from otel_netreceiver.netns.discovery import Namespace, netns_inode

MAX_PIDS_PROBED = 4  # the pause/infra process is normally first; a few more cover odd runtimes


def host_netns_inode(proc_root: str) -> int | None:
    """The node's network namespace: PID 1's, or else the agent's own.

    The one rule for "is this the host namespace", used by the per-pod collector and the
    node API alike. PID 1 (with hostPID) is init, whose namespace is the node's by
    definition, whatever namespace the agent itself was started in. The DaemonSet also
    runs with hostNetwork (the ENA ioctl needs the host namespace), so the agent's own
    namespace is the node's when PID 1's link cannot be read (some sandboxes deny it).
    """
    for pid in ("1", "self"):
        try:
            return netns_inode(os.readlink(f"{proc_root}/{pid}/ns/net"))
        except OSError:
            continue
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
        text = _read(f"{proc_root}/{pid}/cgroup")
        pod = pod_of_process(text)
        if pod is not None:
            return NetnsIdentity("pod", pod.pod_uid, command, parse_proc_cgroup(text))
        first = first or parse_proc_cgroup(text)
    kind = "host" if ns.inode == host_inode else "other"
    return NetnsIdentity(kind, "", command, first)
