"""Network namespaces of the host, found through ``<proc_root>/<pid>/ns/net``.

One representative pid per namespace (the lowest) is enough to read that
namespace's counters through ``<proc_root>/<pid>/net/...`` without setns().
A process that exits while being looked at is skipped: the next cycle sees
the namespace through another pid, or not at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Namespace:
    inode: int
    pid: int  # lowest pid seen in it
    pids: tuple[int, ...]


def netns_inode(link: str) -> int | None:
    """``net:[4026531840]`` → 4026531840."""
    if link.startswith("net:[") and link.endswith("]"):
        digits = link[5:-1]
        return int(digits) if digits.isdigit() else None
    return None


def list_pids(proc_root: str) -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir(proc_root) if name.isdigit())
    except OSError:
        return []


def discover(proc_root: str) -> dict[int, Namespace]:
    """inode → namespace, for every namespace some process is in."""
    members: dict[int, list[int]] = {}
    for pid in list_pids(proc_root):
        try:
            inode = netns_inode(os.readlink(f"{proc_root}/{pid}/ns/net"))
        except OSError:  # exited, or a kernel thread without ns links
            continue
        if inode is not None:
            members.setdefault(inode, []).append(pid)
    return {inode: Namespace(inode, pids[0], tuple(pids)) for inode, pids in members.items()}
