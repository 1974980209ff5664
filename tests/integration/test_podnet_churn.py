"""Churn: 500 network namespaces come and go while the collector runs (seed 004's lesson).

Afterwards no series of a dead namespace is exported, the collector holds no
state for it, no /proc or namespace descriptor is left open, and traced memory
is flat across rounds instead of growing with every namespace ever seen.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc

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


def test_500_namespaces_come_and_go_without_leaving_series_fds_or_memory() -> None:
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    collector = PodNetCollector(PodNetConfig(), "/proc", NoPods())
    store, encoder = SeriesStore(), WireEncoder({"service.name": "churn"})
    store.update(collector.collect())
    baseline_inodes = _inodes(store.snapshot())
    handles_before = _proc_handles()
    tracemalloc.start()
    traced = []
    for _ in range(ROUNDS):
        procs = spawn_bare_namespaces(PER_ROUND)
        time.sleep(0.2)
        store.update(collector.collect())
        live = _inodes(store.snapshot())
        assert len(live - baseline_inodes) >= PER_ROUND  # every new namespace is seen
        encoder.encode(store.snapshot())
        reap(procs)
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
