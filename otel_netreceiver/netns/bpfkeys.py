"""Per-pod BPF map keys joined to the live namespaces of the shared walk.

The per-pod maps are keyed by the namespace cookie where the kernel lets user space read a
namespace's cookie without entering it (ioctl NS_GET_ID on ``<proc_root>/<pid>/ns/net``),
else by inode (bpf/include/netns.h). An inode is reused as soon as its namespace is freed,
so an inode key can carry a dead pod's counts into a new pod's series; a cookie never
names another namespace. Each cycle a key is one of:
- live: the key of a namespace in the walk: its counts go to that namespace's pod;
- dead: in no namespace of a walk made after the key was counted: deleted from the map, so
  its counts are never attributed and its series ends;
- unsure: the walk could not read every namespace's cookie, or no walk made after the key
  was counted may be had now: left in the map, not reported.
A key the shared walk does not know may belong to a namespace born since: a walk begun
after the maps were read decides (``NetnsResolver.walk_after``). At most one such walk is
made per ``FRESH_WALK_GAP``, whoever reads (the collector's cycle or the reads node-API
questions trigger): keys of a namespace that stays unknown, or whose cookie cannot be read,
would otherwise cost a walk of /proc on every read. A key left unsure is decided by a later
read; its counts stay in the kernel map meanwhile.
"""

from __future__ import annotations

from otel_netreceiver.model import Attributes, attrs
from otel_netreceiver.netns.resolver import NetnsResolver, Walk

LIVE, DEAD, UNSURE = "live", "dead", "unsure"
FRESH_WALK_GAP = 0.5  # seconds between walks made for keys the shared walk did not know
UNKNOWN_NETNS: Attributes = attrs({"netns.kind": "unknown"})


class KeyJoin:
    """One cycle's view: map key (cookie or inode) → live namespace and its attributes."""

    def __init__(self, resolver: NetnsResolver, by_cookie: bool,
                 min_gap: float = FRESH_WALK_GAP) -> None:
        self._resolver, self._by_cookie, self._min_gap = resolver, by_cookie, min_gap
        self._read_at = resolver.clock()  # the maps are read after this
        self._walk = resolver.current()
        self._labels: dict[int, Attributes] = {}

    @property
    def resolver(self) -> NetnsResolver:
        """The shared walk's resolver (a probe that writes per-namespace settings to the
        kernel reads the live namespaces and their first processes through it)."""
        return self._resolver

    def _inode(self, walk: Walk, key: int) -> int | None:
        if not self._by_cookie:
            return key if key in walk.entries else None
        return walk.cookies.get(key)

    def status(self, key: int) -> str:
        """live, dead or unsure (see the module docstring); key 0 is live (node level)."""
        if not key or self._inode(self._walk, key) is not None:
            return LIVE
        if self._walk.at < self._read_at:  # may predate the key: a walk made since decides
            walk = self._resolver.walk_after(self._read_at, self._min_gap)
            if walk is None:
                return UNSURE
            self._walk = walk
            self._labels.clear()
            if self._inode(walk, key) is not None:
                return LIVE
        if self._by_cookie and not self._walk.cookies_complete:
            return UNSURE
        return DEAD

    def labels(self, key: int) -> Attributes:
        """The namespace's attributes (netns.inode, pod), or netns.kind=unknown."""
        if key not in self._labels:
            inode = self._inode(self._walk, key) if key else None
            entry = self._walk.entries.get(inode) if inode is not None else None
            self._labels[key] = (self._resolver.attributes(inode, entry[1])
                                 if entry is not None and inode is not None else UNKNOWN_NETNS)
        return self._labels[key]
