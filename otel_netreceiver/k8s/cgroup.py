"""Pod UID and container ID from a process's cgroup path: no CRI socket needed.

The kubelet names pod cgroups after the pod UID under both cgroup drivers
(pkg/kubelet/cm/cgroup_manager_linux.go, ``podCgroupNamePrefix = "pod"``):
- cgroupfs: ``/kubepods/burstable/pod<uid>/<container-id>``
- systemd:  ``/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/
  cri-containerd-<id>.scope`` (systemd escapes "-" in unit names, so the UID's dashes become "_")
Guaranteed pods sit directly under kubepods. cgroup v1 and v2 paths look alike; containerd,
CRI-O and Docker differ only in the scope prefix of the container.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_POD_UID = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:/|$)")
_SCOPE_PREFIXES = ("cri-containerd-", "crio-conmon-", "crio-", "docker-", "containerd-")
_CONTAINER_ID = re.compile(r"^[0-9a-f]{32,64}$")


@dataclass(frozen=True, slots=True)
class CgroupLine:
    hierarchy: str
    controllers: str
    path: str


def parse_proc_cgroup(text: str) -> tuple[CgroupLine, ...]:
    """``/proc/<pid>/cgroup``: ``id:controllers:path`` lines (v2 is ``0::path``)."""
    lines = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            lines.append(CgroupLine(*parts))
    return tuple(lines)


@dataclass(frozen=True, slots=True)
class PodCgroup:
    pod_uid: str
    container_id: str  # "" for the pod-level cgroup itself
    path: str


def pod_from_path(path: str) -> PodCgroup | None:
    """The pod (and container) a cgroup path belongs to, or None for non-pod cgroups."""
    if "kubepods" not in path:
        return None
    match = _POD_UID.search(path)
    if not match:
        return None
    uid = match.group(1).replace("_", "-")
    tail = path[match.end():].strip("/").split("/")[0] if match.end() < len(path) else ""
    return PodCgroup(uid, _container_id(tail), path)


def _container_id(component: str) -> str:
    name = component.removesuffix(".scope")
    for prefix in _SCOPE_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return name if _CONTAINER_ID.match(name) else ""


def pod_of_process(cgroup_text: str) -> PodCgroup | None:
    """Prefer the unified (v2) line, then any v1 hierarchy naming a pod."""
    lines = sorted(parse_proc_cgroup(cgroup_text), key=lambda line: line.hierarchy != "0")
    for line in lines:
        pod = pod_from_path(line.path)
        if pod is not None:
            return pod
    return None


def pod_cgroup_path(path: str) -> str | None:
    """The pod-level cgroup of a container's cgroup path (where the pod's CPU limit applies)."""
    match = _POD_UID.search(path) if "kubepods" in path else None
    if match is None:
        return None
    end = match.end() - (1 if path[match.end() - 1: match.end()] == "/" else 0)
    return path[:end]


def cpu_stat_candidates(lines: tuple[CgroupLine, ...], cgroup_root: str) -> list[str]:
    """Where the pod's cpu.stat may be: v1 cpu controller mounts, then the v2 tree.

    v1 mounts the cpu controller as cpu,cpuacct (most distributions) or cpu alone (this
    project's test machine); v2 is at the root or, on hybrid hosts, at unified/.
    """
    candidates = []
    for line in lines:
        pod = pod_cgroup_path(line.path)
        if pod is None:
            continue
        if "cpu" in line.controllers.split(","):
            candidates += [f"{cgroup_root}/cpu,cpuacct{pod}/cpu.stat",
                           f"{cgroup_root}/cpu{pod}/cpu.stat"]
        elif line.hierarchy == "0":
            candidates += [f"{cgroup_root}{pod}/cpu.stat", f"{cgroup_root}/unified{pod}/cpu.stat"]
    return candidates
