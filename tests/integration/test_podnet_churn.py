"""Churn: 500 network namespaces come and go while the collector runs (seed 004's lesson).

Afterwards no series of a dead namespace is exported, the collector holds no
state for it, no /proc or namespace descriptor is left open, and traced memory
is flat across rounds instead of growing with every namespace ever seen.

The collector's proc root holds only pid 1, this process and the test's own processes
(links into the real /proc): it reads the real kernel's files for them, and the
namespaces that other tests and programs on the node create and destroy meanwhile
neither count as the test's nor move its memory.
"""

from __future__ import annotations

import gc
import os
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest

from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.pods import kernel_supports_test_pods, reap, spawn_bare_namespaces

pytestmark = pytest.mark.root

ROUNDS, PER_ROUND = 10, 50


def _inodes(snapshot) -> set[str]:  # type: ignore[no-untyped-def]
    return {dict(p.attributes).get("netns.inode") for m in snapshot.metrics for p in m.points
            } - {None}


def _proc_handles() -> set[str]:
    """Open descriptors of this process that point into /proc or at a namespace.

    Only these can be the collector's (everything else belongs to other tests' threads,
    servers and clients, which come and go while this runs in the full suite).
    """
    handles = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("/proc/", "net:[")):
            handles.add(f"{fd}->{target}")
    return handles


class OwnProc:
    """A proc root of links into /proc: pid 1 (the host's namespace), ``self`` and this
    process, and the processes added."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        (root / "self").symlink_to("/proc/self")  # whoever reads: this process
        for pid in (1, os.getpid()):
            self._link(pid)

    def _link(self, pid: int) -> None:
        (self.root / str(pid)).symlink_to(f"/proc/{pid}")

    def add(self, procs: list[subprocess.Popen]) -> None:
        """Link them once each has entered its own namespace (unshare is not instant)."""
        host = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 30
        for proc in procs:
            while os.readlink(f"/proc/{proc.pid}/ns/net") == host:
                assert time.monotonic() < deadline, f"pid {proc.pid} never left the host netns"
                time.sleep(0.01)
            self._link(proc.pid)

    def remove(self, procs: list[subprocess.Popen]) -> None:
        for proc in procs:
            (self.root / str(proc.pid)).unlink()


def test_500_namespaces_come_and_go_without_leaving_series_fds_or_memory(tmp_path) -> None:
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    own = OwnProc(tmp_path / "proc")
    collector = PodNetCollector(PodNetConfig(), str(own.root), NoPods())
    store, encoder = SeriesStore(), WireEncoder({"service.name": "churn"})
    store.update(collector.collect())
    baseline_inodes = _inodes(store.snapshot())
    handles_before = _proc_handles()
    tracemalloc.start()
    traced = []
    for _ in range(ROUNDS):
        procs = spawn_bare_namespaces(PER_ROUND)
        own.add(procs)
        store.update(collector.collect())
        live = _inodes(store.snapshot())
        assert len(live - baseline_inodes) == PER_ROUND  # every new namespace is seen
        encoder.encode(store.snapshot())
        reap(procs)
        own.remove(procs)
        store.update(collector.collect())
        encoder.encode(store.snapshot())
        assert _inodes(store.snapshot()) <= baseline_inodes  # the dead are gone next cycle
        gc.collect()
        traced.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    assert len(collector._resolver._cache) == len(baseline_inodes)  # no state for the dead
    assert {k[0] for k in collector._resolver._attributes} <= set(collector._resolver._cache)
    assert set(collector._memo) <= {int(i) for i in baseline_inodes}  # memos keyed by inode
    live_attribute_sets = {p.attributes for m in store.snapshot().metrics for p in m.points}
    cached = {held[0] for kind in encoder._prefixes for held in kind.values()}
    assert cached == live_attribute_sets  # cached bytes only for live series
    assert _proc_handles() <= handles_before  # no /proc or namespace handle left open
    # flat after warm-up: round 10 holds no more than round 2 plus a small allowance
    assert traced[-1] - traced[1] < 256 * 1024, traced
