"""The per-pod collector: every network namespace of the node, its counters, its pod.

Per cycle: take the namespaces of the agent's shared walk (netns/resolver.py: the
inode of <proc_root>/<pid>/ns/net, one representative pid each, identified once per
inode and pid), confirm a reused walk's pid is still inside its namespace, run the
configured probes through that pid's /proc, and
return one collection. A namespace whose process exits mid-read is left out of
this cycle quietly; a malformed file is reported as an error naming it and costs
only that probe's points.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.podnet.io_accounting import IoAccounting
from otel_netreceiver.collectors.podnet.memo import NetnsMemo, as_blocks
from otel_netreceiver.collectors.podnet.probes import (
    BLOCK_PROBES,
    PROBE_FILES,
    PROBES,
    Gone,
    Target,
    read_net,
)
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.k8s.cgroup import cpu_stat_candidates
from otel_netreceiver.k8s.directory import PodDirectory
from otel_netreceiver.model import Block, Collection, Point, ProbeStatus, attrs
from otel_netreceiver.netns.discovery import Namespace
from otel_netreceiver.netns.identity import NetnsIdentity
from otel_netreceiver.netns.resolver import NetnsResolver
from otel_netreceiver.procfs.errors import ParseError


class PodNetCollector:
    name = "podnet"

    def __init__(self, config: PodNetConfig, proc_root: str, directory: PodDirectory,
                 select: Callable[[NetnsIdentity], bool] | None = None,
                 resolver: NetnsResolver | None = None) -> None:
        self._config, self._proc_root = config, proc_root
        self._select = select  # only these namespaces (the history's fast sampler)
        # the agent's shared resolver (one walk per cycle), or a private one walking each call
        self._resolver = resolver or NetnsResolver(proc_root, directory)
        self._labels = tuple(config.labels)
        self._cpu_stat: dict[tuple[int, int], str | None] = {}  # (inode, pid) → cpu.stat path
        # inode → what its files said last cycle (collectors/podnet/memo.py)
        self._memo: dict[int, NetnsMemo] = {}
        self._next_memo: dict[int, NetnsMemo] = {}
        self._io = IoAccounting(proc_root)

    def _cpu_stat_path(self, ns: Namespace, identity: NetnsIdentity) -> str | None:
        key = (ns.inode, ns.pid)
        if key not in self._cpu_stat:
            path = None
            if identity.kind == "pod" and "cpu" in self._config.probes:
                candidates = cpu_stat_candidates(identity.cgroups, self._config.cgroup_root)
                path = next((c for c in candidates if os.path.exists(c)), None)
            self._cpu_stat[key] = path
        return self._cpu_stat[key]

    def _io_points(self, inode: int, target: Target) -> list[Point]:
        totals = self._io.update(inode, target.pids)
        syscalls, volume = metric("netreceiver.pod.io.syscalls"), metric("netreceiver.pod.io.bytes")
        points = []
        for direction, calls, chars in (("receive", "syscr", "rchar"),
                                        ("transmit", "syscw", "wchar")):
            a = tuple(sorted((*target.attributes, ("network.io.direction", direction))))
            points += [Point(syscalls, a, totals[calls]), Point(volume, a, totals[chars])]
        return points

    def _read(self, inode: int, target: Target, errors: list[str]) -> list[Block]:
        blocks: list[Block] = []
        for probe in self._config.probes:
            try:
                blocks += self._run(inode, probe, target)
            except ParseError as exc:
                errors.append(f"probe {probe}: {exc}")
        return blocks

    def _run(self, inode: int, probe: str, target: Target) -> list[Block]:
        """Run a probe, or reuse its last blocks when its input files did not change.

        Probes that return points have them wrapped in one block, whose keys (and
        values, when none moved) are last cycle's objects: the store's one-step path.
        """
        files, state = PROBE_FILES.get(probe), target.state()
        held = state.probes.get(probe)
        texts = (None if files is None else (read_net(target, files[0]),) if len(files) == 1
                 else tuple(read_net(target, name) for name in files))
        if texts is not None and held is not None and held[0] == texts:
            return held[1]
        if probe == "io":
            out = as_blocks(self._io_points(inode, target), held and held[1])
        elif probe in BLOCK_PROBES:
            out = PROBES[probe](target)
        else:
            out = as_blocks(PROBES[probe](target), held and held[1])
        state.probes[probe] = (texts, out)
        return out

    def _netns_memo(self, inode: int, attributes: tuple) -> NetnsMemo:
        """Last cycle's memo of the namespace, unless its attributes changed (points and
        block keys carry them)."""
        memo = self._memo.get(inode)
        if memo is None or memo.attributes != attributes:
            memo = NetnsMemo(attributes)
        self._next_memo[inode] = memo
        return memo

    def collect(self) -> Collection:
        blocks: list[Block] = []
        errors: list[str] = []
        kinds: Counter[str] = Counter()
        self._next_memo = {}
        self._io.begin_cycle()
        walks = self._resolver.walks
        live = self._resolver.resolve()
        reused = walks == self._resolver.walks  # walked earlier: the pid may have moved on
        for inode, (ns, identity) in live.items():
            if identity.kind == "host" and not self._config.include_host:
                continue
            if self._select is not None and not self._select(identity):
                continue
            if reused and not self._resolver.still_in(ns):
                continue  # its process left; the next walk finds the namespace again
            attributes = self._resolver.attributes(inode, identity, self._config.verbose,
                                                   self._labels)
            target = Target(self._proc_root, ns.pid, ns.pids, attributes,
                            self._cpu_stat_path(ns, identity),
                            memo=self._netns_memo(inode, attributes))
            try:
                blocks += self._read(inode, target, errors)
            except Gone:
                continue  # the namespace went away mid-read: it is simply not in this cycle
            kinds[identity.kind] += 1
        # state of vanished namespaces is dropped here
        self._cpu_stat = {k: v for k, v in self._cpu_stat.items() if k[0] in live}
        self._memo = self._next_memo
        self._io.end_cycle()
        count = metric("netreceiver.netns.count")
        points = [Point(count, attrs({"netns.kind": k}), kinds.get(k, 0))
                  for k in ("pod", "host", "other")]
        return Collection.of(self.name, points, time.time_ns(), errors, blocks)

    def probe(self) -> ProbeStatus:
        found = self._resolver.resolve()
        if not found:
            return ProbeStatus(self.name, False, f"no network namespace visible under "
                               f"{self._proc_root} (needs hostPID and the host's /proc)")
        return ProbeStatus(self.name, True, f"{len(found)} network namespaces; probes: "
                           f"{', '.join(self._config.probes)}")

    def close(self) -> None:
        self._memo.clear()
        self._cpu_stat.clear()
