"""Namespace identity and the shared resolver: one host rule (podnet and the node API alike),
one walk per cycle for every user (netns/identity.py, netns/resolver.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.netns.discovery import Namespace
from otel_netreceiver.netns.identity import host_netns_inode, identify
from otel_netreceiver.netns.resolver import NetnsResolver
from otel_netreceiver.nodeapi.callers import HOST, CallerIdentifier, Refused

POD_CGROUP = "0::/kubepods/burstable/pod1b2c3d4e-0000-1111-2222-333344445555/" + "a" * 64


def _process(root: Path, pid: str, netns: int, cgroup: str = "0::/system.slice/x\n") -> None:
    ns = root / pid / "ns"
    ns.mkdir(parents=True)
    os.symlink(f"net:[{netns}]", ns / "net")
    (root / pid / "cgroup").write_text(cgroup)
    (root / pid / "comm").write_text(f"proc{pid}\n")


def test_the_host_namespace_is_pid_1s_even_when_the_agent_is_elsewhere(tmp_path: Path) -> None:
    _process(tmp_path, "1", 4026531840)
    _process(tmp_path, "self", 4026532999)  # the agent started without hostNetwork
    _process(tmp_path, "300", 4026532999)  # a process sharing the agent's namespace
    _process(tmp_path, "301", 4026531840)
    assert host_netns_inode(str(tmp_path)) == 4026531840
    kinds = {ns.inode: identify(str(tmp_path), ns, host_netns_inode(str(tmp_path))).kind
             for ns in (Namespace(4026531840, 301, (301,)), Namespace(4026532999, 300, (300,)))}
    assert kinds == {4026531840: "host", 4026532999: "other"}
    callers = CallerIdentifier(str(tmp_path), lambda uid: None, lambda ip: None, set)
    assert callers.from_pid(301, 0).kind == HOST
    with pytest.raises(Refused, match="not in the node's network namespace"):
        callers.from_pid(300, 0)


def test_without_pid_1_the_agents_own_namespace_is_the_hosts(tmp_path: Path) -> None:
    _process(tmp_path, "self", 4026531833)
    _process(tmp_path, "42", 4026531833)
    assert host_netns_inode(str(tmp_path)) == 4026531833
    assert CallerIdentifier(str(tmp_path), lambda uid: None, lambda ip: None,
                            set).from_pid(42).kind == HOST
    assert host_netns_inode(str(tmp_path / "absent")) is None


def test_a_pod_cgroup_names_the_namespace_whatever_its_first_process(tmp_path: Path) -> None:
    _process(tmp_path, "1", 4026531840)
    _process(tmp_path, "500", 4026533000)  # a runtime helper first, then the pod's pause
    _process(tmp_path, "501", 4026533000, POD_CGROUP + "\n")
    found = identify(str(tmp_path), Namespace(4026533000, 500, (500, 501)), 4026531840)
    assert (found.kind, found.pod_uid) == ("pod", "1b2c3d4e-0000-1111-2222-333344445555")
    assert found.command == "proc500" and found.cgroups[0].path.startswith("/kubepods/")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_users_of_one_cycle_share_one_walk_and_the_dead_leave_with_the_next(
        tmp_path: Path) -> None:
    _process(tmp_path, "1", 4026531840)
    _process(tmp_path, "500", 4026533000, POD_CGROUP + "\n")
    clock = Clock()
    resolver = NetnsResolver(str(tmp_path), NoPods(), max_age=13.5, clock=clock)
    first = resolver.current()
    assert set(first.entries) == {4026531840, 4026533000} and first.generation == 1
    clock.now += 13.0  # podnet, eBPF, the sampler and events of the same cycle
    assert all(resolver.current() is first for _ in range(4)) and resolver.walks == 1
    assert resolver.current(max_age=0).generation == 2  # an unknown inode forces one
    (tmp_path / "500" / "ns" / "net").unlink()  # the pod's last process exited
    os.symlink("net:[4026531840]", tmp_path / "500" / "ns" / "net")  # its pid reused on host
    ns = first.entries[4026533000][0]
    assert not resolver.still_in(ns) and resolver.still_in(first.entries[4026531840][0])
    clock.now += 13.5
    later = resolver.current()
    assert later.generation == 3 and set(later.entries) == {4026531840}
    assert later.entries[4026531840][0].pids == (1, 500)


def test_a_negative_max_age_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="max_age must be >= 0"):
        NetnsResolver("/proc", NoPods(), max_age=-1)


def test_keys_no_walk_knows_cost_at_most_one_walk_per_gap(tmp_path: Path) -> None:
    """Map keys of namespaces the shared walk does not know (dead, or born since) need a walk
    made after the maps were read; questions re-reading the maps share one per gap."""
    from otel_netreceiver.netns.bpfkeys import DEAD, FRESH_WALK_GAP, LIVE, UNSURE, KeyJoin

    _process(tmp_path, "1", 4026531840)
    clock = Clock()
    resolver = NetnsResolver(str(tmp_path), NoPods(), max_age=13.5, clock=clock)
    resolver.current()  # podnet's walk of this cycle
    clock.now += 0.01
    assert KeyJoin(resolver, by_cookie=False).status(99) == DEAD  # walked for it
    assert resolver.walks == 2
    for _ in range(50):  # a flood of questions within the gap: none walks again
        clock.now += FRESH_WALK_GAP / 100
        assert KeyJoin(resolver, by_cookie=False).status(99) == UNSURE
    assert resolver.walks == 2
    _process(tmp_path, "600", 4026533001)  # a namespace born since the last walk
    clock.now += 0.01
    join = KeyJoin(resolver, by_cookie=False)
    assert join.status(4026533001) == UNSURE  # kept in the map: never called dead unseen
    assert join.status(4026531840) == LIVE and resolver.walks == 2
    clock.now += FRESH_WALK_GAP / 2
    join = KeyJoin(resolver, by_cookie=False)
    assert join.status(4026533001) == LIVE and join.status(99) == DEAD
    assert resolver.walks == 3
