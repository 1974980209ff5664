"""The per-pod collector: every network namespace of the node, its counters, its pod.

Per cycle: find namespaces by the inode of <proc_root>/<pid>/ns/net (one
representative pid each), identify each (cached per inode and pid, freed when
the namespace goes), run the configured probes through that pid's /proc, and
return one collection. A namespace whose process exits mid-read is left out of
this cycle quietly; a malformed file is reported as an error naming it and costs
only that probe's points.
"""

from __future__ import annotations

import os
import time
from collections import Counter

from otel_netreceiver.catalogue import metric
from otel_netreceiver.collectors.podnet.identity import (
    NetnsIdentity,
    PodDirectory,
    identify,
)
from otel_netreceiver.collectors.podnet.io_accounting import IoAccounting
from otel_netreceiver.collectors.podnet.probes import PROBE_FILES, PROBES, Gone, Target, read_net
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.k8s.cgroup import cpu_stat_candidates
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs
from otel_netreceiver.netns.discovery import Namespace, discover, netns_inode
from otel_netreceiver.procfs.errors import ParseError


class PodNetCollector:
    name = "podnet"

    def __init__(self, config: PodNetConfig, proc_root: str, directory: PodDirectory) -> None:
        self._config, self._proc_root, self._directory = config, proc_root, directory
        self._identities: dict[int, tuple[int, NetnsIdentity, str | None]] = {}
        self._labels = tuple(config.labels)
        # (inode, probe) → (input texts, attributes, points) of the last cycle
        self._memo: dict[tuple[int, str], tuple[tuple, tuple, list[Point]]] = {}
        self._next_memo: dict[tuple[int, str], tuple[tuple, tuple, list[Point]]] = {}
        self._io = IoAccounting(proc_root)

    def _host_inode(self) -> int | None:
        """The node's namespace: PID 1's, or else the agent's own.

        The DaemonSet runs with hostNetwork (the ENA ioctl needs the host namespace), so
        the agent's namespace is the node's when PID 1's link cannot be read (some
        sandboxes deny it, as this project's test machine does).
        """
        for pid in ("1", "self"):
            try:
                return netns_inode(os.readlink(f"{self._proc_root}/{pid}/ns/net"))
            except OSError:
                continue
        return None

    def _identity(self, ns: Namespace, host: int | None) -> tuple[NetnsIdentity, str | None]:
        cached = self._identities.get(ns.inode)
        if cached is not None and cached[0] == ns.pid:
            return cached[1], cached[2]
        identity = identify(self._proc_root, ns, host)
        cpu_stat = None
        if identity.kind == "pod" and "cpu" in self._config.probes:
            candidates = cpu_stat_candidates(identity.cgroups, self._config.cgroup_root)
            cpu_stat = next((c for c in candidates if os.path.exists(c)), None)
        return identity, cpu_stat

    def _io_points(self, inode: int, target: Target) -> list[Point]:
        totals = self._io.update(inode, target.pids)
        syscalls, volume = metric("netreceiver.pod.io.syscalls"), metric("netreceiver.pod.io.bytes")
        points = []
        for direction, calls, chars in (("receive", "syscr", "rchar"),
                                        ("transmit", "syscw", "wchar")):
            a = tuple(sorted((*target.attributes, ("network.io.direction", direction))))
            points += [Point(syscalls, a, totals[calls]), Point(volume, a, totals[chars])]
        return points

    def _read(self, inode: int, target: Target, errors: list[str]) -> list[Point]:
        points: list[Point] = []
        for probe in self._config.probes:
            try:
                if probe == "io":
                    points.extend(self._io_points(inode, target))
                    continue
                points.extend(self._run(inode, probe, target))
            except ParseError as exc:
                errors.append(f"probe {probe}: {exc}")
        return points

    def _run(self, inode: int, probe: str, target: Target) -> list[Point]:
        """Run a probe, or reuse its last points when its input files did not change."""
        files = PROBE_FILES.get(probe)
        if files is None:
            return PROBES[probe](target)
        texts = tuple(read_net(target, name) for name in files)
        memo = self._memo.get((inode, probe))
        if memo is not None and memo[0] == texts and memo[1] == target.attributes:
            points = memo[2]
        else:
            points = PROBES[probe](target)
        self._next_memo[(inode, probe)] = (texts, target.attributes, points)
        return points

    def collect(self) -> Collection:
        host = self._host_inode()
        points: list[Point] = []
        errors: list[str] = []
        kinds: Counter[str] = Counter()
        seen: dict[int, tuple[int, NetnsIdentity, str | None]] = {}
        self._next_memo = {}
        self._io.begin_cycle()
        for inode, ns in discover(self._proc_root).items():
            identity, cpu_stat = self._identity(ns, host)
            seen[inode] = (ns.pid, identity, cpu_stat)
            if identity.kind == "host" and not self._config.include_host:
                continue
            labels = identity.attributes(inode, self._directory, self._config.verbose,
                                         self._labels)
            try:
                points.extend(self._read(inode, Target(self._proc_root, ns.pid, ns.pids, labels,
                                                       cpu_stat), errors))
            except Gone:
                continue  # the namespace went away mid-read: it is simply not in this cycle
            kinds[identity.kind] += 1
        self._identities = seen  # state of vanished namespaces is dropped here
        self._memo = self._next_memo
        self._io.end_cycle()
        count = metric("netreceiver.netns.count")
        points += [Point(count, attrs({"netns.kind": k}), kinds.get(k, 0))
                   for k in ("pod", "host", "other")]
        return Collection.of(self.name, points, time.time_ns(), errors)

    def probe(self) -> ProbeStatus:
        found = discover(self._proc_root)
        if not found:
            return ProbeStatus(self.name, False, f"no network namespace visible under "
                               f"{self._proc_root} (needs hostPID and the host's /proc)")
        return ProbeStatus(self.name, True, f"{len(found)} network namespaces; probes: "
                           f"{', '.join(self._config.probes)}")

    def close(self) -> None:
        self._identities.clear()
        self._memo.clear()
