"""Network namespaces of the host, found through ``<proc_root>/<pid>/ns/net``.

One representative pid per namespace (the lowest) is enough to read that
namespace's counters through ``<proc_root>/<pid>/net/...`` without setns().
A process that exits while being looked at is skipped: the next cycle sees
the namespace through another pid, or not at all.
"""

from __future__ import annotations

import fcntl
import os
import sys
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


# ioctl(NS_GET_ID) on an nsfs file: _IOR(NSIO=0xb7, 13, __u64) (include/uapi/linux/nsfs.h).
# For a network namespace the id is its cookie, the value SO_NETNS_COOKIE returns
# (net->net_cookie): unique for the life of the system, where inodes are reused.
NS_GET_ID = 0x8008B70D


def netns_cookie(link_path: str) -> int | None:
    """The cookie of the namespace ``<proc_root>/<pid>/ns/net`` points at, without setns().

    None when the process is gone or the kernel has no NS_GET_ID (before Linux 6.18).
    """
    try:
        fd = os.open(link_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = fcntl.ioctl(fd, NS_GET_ID, b"\0" * 8)
    except OSError:
        return None
    finally:
        os.close(fd)
    return int.from_bytes(raw, sys.byteorder) or None
