"""Each live namespace's resolver timeout, written into a kernel table keyed by cookie.

The counting program (``timeouts``) and the event program (``ev_timeouts``) both measure a
query against the pod's own ``options timeout:`` (dns/resolvconf.py). The file is read
through the namespace's first process, and read again whenever it changes: its stat
(inode, size, mtime) is taken every cycle, one syscall per namespace, because kubelet and
operators rewrite resolv.conf in place (dnsConfig updates, a mounted ConfigMap) and a pod
that keeps its process keeps the stale value otherwise.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from otel_netreceiver.dns.resolvconf import read_resolv_conf
from otel_netreceiver.netns.resolver import NetnsResolver

FileStamp = tuple[int, int, int] | None  # st_ino, st_size, st_mtime_ns; None: unreadable


def stamp(proc_root: str, pid: int) -> FileStamp:
    """What identifies one version of the resolv.conf process ``pid`` sees."""
    try:
        st = os.stat(os.path.join(proc_root, str(pid), "root", "etc", "resolv.conf"))
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class TimeoutWriter:
    """Writes each live namespace's timeout (ns) into ``table`` when it changed; deletes the
    entries of namespaces that are gone (the table would fill with the dead)."""

    def __init__(self, proc_root: str, resolver: NetnsResolver) -> None:
        self._proc_root, self._resolver = proc_root, resolver
        self.written: dict[int, int] = {}  # cookie → timeout ns in the kernel
        # (inode, pid) → (file stamp, timeout ns): re-read when either changes
        self._options: dict[tuple[int, int], tuple[FileStamp, int]] = {}
        self.reads = 0  # resolv.conf files parsed (tests: a change is read once)

    def timeout_of(self, inode: int, pid: int) -> int:
        now = stamp(self._proc_root, pid)
        known = self._options.get((inode, pid))
        if known is not None and known[0] == now:
            return known[1]
        parsed = read_resolv_conf(self._proc_root, pid)
        self.reads += 1
        value = int((parsed.timeout_s if parsed else 5.0) * 1e9)
        self._options[(inode, pid)] = (now, value)
        return value

    def write(self, table: Any) -> None:
        walk = self._resolver.current()
        if walk.cookies_complete:
            for cookie in [c for c in self.written if c not in walk.cookies]:
                del self.written[cookie]
                with contextlib.suppress(KeyError):
                    table.__delitem__(table.Key(cookie))
        inodes = {inode: cookie for cookie, inode in walk.cookies.items()}
        seen: set[tuple[int, int]] = set()
        for inode, (ns, _identity) in walk.entries.items():
            cookie = inodes.get(inode)
            if cookie is None:
                continue
            seen.add((inode, ns.pid))
            value = self.timeout_of(inode, ns.pid)
            if self.written.get(cookie) != value:
                table[table.Key(cookie)] = table.Leaf(value)
                self.written[cookie] = value
        for key in [k for k in self._options if k not in seen]:
            del self._options[key]  # a namespace's first process changed, or it is gone
