"""cgroup v2 ids → pods: who sent a packet from the node's own network namespace.

hostNetwork pods share the node's namespace, so a namespace cookie cannot tell them from
the node. A socket remembers the cgroup v2 of the task that created it
(include/linux/cgroup-defs.h sock_cgroup_data), which a cgroup_skb program reads with
bpf_skb_cgroup_id. That id is the cgroup directory's inode number in cgroupfs (kernfs
node id on 64-bit kernels), so the pod is found by walking the v2 tree's kubepods
directories, whose paths carry the pod UID (k8s/cgroup.py). Only the kubepods subtrees are
walked, and only when an id is not known yet.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from otel_netreceiver.k8s.cgroup import PodCgroup, pod_from_path

MAX_DEPTH = 5  # kubepods.slice/<qos>.slice/<pod>.slice/<container>.scope, and one more


def v2_root(cgroup_root: str) -> str | None:
    """The cgroup v2 tree under a configured root: <root>/unified (hybrid), else <root>."""
    for path in (os.path.join(cgroup_root, "unified"), cgroup_root):
        if os.path.exists(os.path.join(path, "cgroup.controllers")):
            return path
    return None


def walk_pod_cgroups(root: str) -> dict[int, PodCgroup]:
    """cgroup id (directory inode) → pod (UID, path under ``root``), for every pod and
    container cgroup under the kubepods directories of the v2 tree at ``root``."""
    out: dict[int, PodCgroup] = {}
    try:
        tops = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)
                and e.name.startswith("kubepods")]
    except OSError:
        return out
    stack = [(e.path, 1) for e in tops]
    while stack:
        path, depth = stack.pop()
        pod = pod_from_path(path[len(root):])
        try:
            if pod is not None:
                out[os.stat(path).st_ino] = pod
            if depth < MAX_DEPTH:
                stack.extend((e.path, depth + 1) for e in os.scandir(path)
                             if e.is_dir(follow_symlinks=False))
        except OSError:  # removed while walked
            continue
    return out


class CgroupPods:
    """cgroup id → pod UID, walked again only when asked about an id no walk has seen.

    Ids are never reused (64-bit kernfs ids), and the kernel counted an id while its cgroup
    existed, before the walk that follows: an id that walk does not find is not a pod's
    (a system service's, the node's root), and is not walked for again.
    """

    def __init__(self, cgroup_root: str) -> None:
        self._root = v2_root(cgroup_root)
        self._known: dict[int, PodCgroup] = {}
        self._other: set[int] = set()
        self.walks = 0

    def lookup(self, ids: Iterable[int]) -> dict[int, str]:
        """The pod UID of each id that belongs to a pod (others: the node)."""
        wanted = set(ids) - {0}
        if self._root is not None and wanted - set(self._known) - self._other:
            self._known = walk_pod_cgroups(self._root)
            self._other = (self._other | wanted) - set(self._known)
            self.walks += 1
        return {i: self._known[i].pod_uid for i in wanted if i in self._known}

    def gone(self, ids: Iterable[int]) -> set[int]:
        """The pod cgroups among ``ids`` whose directory is gone (the pod was deleted): their
        map rows can go, so a hostNetwork pod's series ends and the map does not fill."""
        out = set()
        for i in ids:
            pod = self._known.get(i)
            if pod is not None and self._root is not None and not os.path.isdir(
                    self._root + pod.path):
                out.add(i)
                del self._known[i]
        return out
