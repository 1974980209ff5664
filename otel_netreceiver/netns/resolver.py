"""One walk of the node's network namespaces, shared by every user in a collection cycle.

The per-pod collector, the eBPF collector, kernel events and the history's sampler all
need "which namespaces exist and who owns each". A walk reads every process's
``<proc_root>/<pid>/ns/net`` link, so at 200 pods it is the largest fixed cost of a cycle;
done once per user it was paid up to four times per cycle, and every second by the 1 s
history sampler. The agent creates one NetnsResolver; each user asks for the current walk,
which is reused while younger than ``max_age`` (the agent sets it to most of a collection
interval), so the users of one cycle share one walk. A caller that met a namespace the
walk does not know (a kernel event from a pod born since) asks for a fresh walk itself,
rate limited by that caller.

A reused walk may name a representative pid that has since exited: readers of
``<pid>/net`` then get Gone and skip that namespace for the cycle; ``still_in`` lets a
reader confirm the pid is still inside the namespace before trusting what it reads.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from otel_netreceiver.k8s.directory import PodDirectory, PodMeta
from otel_netreceiver.model import Attributes
from otel_netreceiver.netns.discovery import Namespace, discover, netns_cookie, netns_inode
from otel_netreceiver.netns.identity import NetnsIdentity, host_netns_inode, identify


@dataclass(frozen=True, slots=True)
class Walk:
    """Every namespace alive at ``at`` (monotonic seconds) and who owns it."""

    generation: int  # 0: never walked; each walk adds one, so users can cache per walk
    at: float
    entries: Mapping[int, tuple[Namespace, NetnsIdentity]] = field(
        default_factory=lambda: MappingProxyType({}))
    cookies: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))  # → inode
    cookies_complete: bool = False  # every live namespace's cookie was read


class NetnsResolver:
    """The node's namespaces and who owns each; identities cached per (inode, pid).

    Thread safe: the collectors, the history sampler and the event thread share it. A
    caller that finds the walk stale walks under the lock, so concurrent callers wait for
    that walk instead of starting their own.
    """

    def __init__(self, proc_root: str, directory: PodDirectory, max_age: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_age < 0 or math.isnan(max_age):
            raise ValueError(f"netns resolver max_age must be >= 0 seconds, got {max_age}")
        self.proc_root, self.directory = proc_root, directory
        self.max_age, self.clock = max_age, clock
        self._lock = threading.Lock()
        self._walk = Walk(0, -math.inf)
        self._asked_at = -math.inf  # the last walk_after() that walked
        # inode → (pid, identity, cookie): a namespace is looked at once, unless its pid changes
        self._cache: dict[int, tuple[int, NetnsIdentity, int | None]] = {}
        self._cookies = True  # False once the kernel showed it has no NS_GET_ID
        # (inode, verbose, label keys) → (identity, pod metadata, attributes): rebuilt only
        # when the identity or the pod's metadata changed
        self._attributes: dict[tuple[int, bool, tuple[str, ...]],
                               tuple[NetnsIdentity, PodMeta | None, Attributes]] = {}
        self.walks = 0  # how many times /proc was walked (self-check for benches and tests)

    def current(self, max_age: float | None = None) -> Walk:
        """The latest walk if younger than ``max_age`` (default: the resolver's), else a new one."""
        limit = self.max_age if max_age is None else max_age
        with self._lock:
            walk = self._walk
            if walk.generation and self.clock() - walk.at < limit:
                return walk
            self._walk = self._walk_now(walk.generation + 1)
            return self._walk

    def walk_after(self, at: float, min_gap: float) -> Walk | None:
        """A walk begun at or after ``at`` (``clock`` seconds): the latest if it is, else a
        new one, unless this method walked less than ``min_gap`` seconds ago (then None).

        A BPF map key no walk knows is called dead only on a walk made since its reader
        began (netns/bpfkeys.py); the gap keeps a flood of node-API questions, each reading
        the maps again, from walking /proc once per question.
        """
        with self._lock:
            walk = self._walk
            if walk.generation and walk.at >= at:
                return walk
            now = self.clock()
            if now - self._asked_at < min_gap:
                return None
            self._asked_at = now
            self._walk = self._walk_now(walk.generation + 1)
            return self._walk

    def _walk_now(self, generation: int) -> Walk:
        host, fresh = host_netns_inode(self.proc_root), {}
        entries, cookies = {}, {}
        at = self.clock()
        for inode, ns in discover(self.proc_root).items():
            cached = self._cache.get(inode)
            if cached is None or cached[0] != ns.pid:
                cached = (ns.pid, identify(self.proc_root, ns, host), self._cookie(ns))
            fresh[inode] = cached
            entries[inode] = (ns, cached[1])
            if cached[2] is not None:
                cookies[cached[2]] = inode
        self._cache = fresh  # the dead are forgotten
        self._attributes = {k: v for k, v in self._attributes.items() if k[0] in fresh}
        self.walks += 1
        return Walk(generation, at, MappingProxyType(entries), MappingProxyType(cookies),
                    self._cookies and len(cookies) == len(entries))

    def _cookie(self, ns: Namespace) -> int | None:
        if not self._cookies:
            return None
        cookie = netns_cookie(f"{self.proc_root}/{ns.pid}/ns/net")
        if cookie is None and netns_cookie(f"{self.proc_root}/self/ns/net") is None:
            self._cookies = False  # no NS_GET_ID here: BPF maps stay keyed by inode
        return cookie

    @property
    def has_cookies(self) -> bool:
        """Whether namespace cookies can be read here (NS_GET_ID on the nsfs files)."""
        if self._cookies and self._walk.generation == 0:
            self._cookies = netns_cookie(f"{self.proc_root}/self/ns/net") is not None
        return self._cookies

    def resolve(self) -> Mapping[int, tuple[Namespace, NetnsIdentity]]:
        """inode → (namespace, identity) of the current walk."""
        return self.current().entries

    def still_in(self, ns: Namespace) -> bool:
        """Whether the namespace's representative pid is still inside it (a reused walk)."""
        try:
            return netns_inode(os.readlink(f"{self.proc_root}/{ns.pid}/ns/net")) == ns.inode
        except OSError:
            return False

    def attributes(self, inode: int, identity: NetnsIdentity, verbose: bool = False,
                   label_keys: tuple[str, ...] = ()) -> Attributes:
        """Names from the pod directory at each call: a pod named late is named from then on.

        Built again only when the identity or the pod's metadata changed: sorting them for
        every namespace every cycle showed in the per-pod benchmark (BENCHMARKS.md, "Busy
        namespaces").
        """
        meta = self.directory.get(identity.pod_uid) if identity.kind == "pod" else None
        key = (inode, verbose, label_keys)
        held = self._attributes.get(key)
        if held is not None and held[0] is identity and held[1] == meta:
            return held[2]
        attributes = identity.attributes(inode, self.directory, verbose, label_keys)
        self._attributes[key] = (identity, meta, attributes)
        return attributes
