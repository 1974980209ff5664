"""Churn soak: namespaces, pods and connections come and go under the threaded agent.

Each round (two collection intervals) starts bare network namespaces and
kills older ones, creates and destroys a full pod (veth, cgroup, process) and
opens and closes TCP connections, while the agent collects every second and
exports OTLP to a real sink. After every round the exported namespaces must be
exactly this test's live ones (none missing, none dead), and after warm-up
the process's fd count, traced Python memory and RSS must stay flat.

CI runs 12 rounds; ONR_SOAK=full runs 240 (480 cycles: two hours of churn at
the default 15 s interval, compressed into about ten minutes).
"""

from __future__ import annotations

import io
import os
import socket
import statistics
import time
import tracemalloc

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.otlp_sink import OtlpHttpSink
from tests.support.pods import (
    create_pod,
    destroy_pod,
    kernel_supports_test_pods,
    reap,
    spawn_bare_namespaces,
)
from tests.support.soak import cpu_seconds, fd_count, record, rss_bytes, scaled, wait_until

pytestmark = [pytest.mark.soak, pytest.mark.root]
PER_ROUND, WARMUP = 8, 4
KB = 1024


CONNECT = """
import socket
with socket.create_server(("127.0.0.1", 0)) as server:
    for _ in range(20):
        with socket.create_connection(server.getsockname()) as client:
            server.accept()[0].close()
"""


def _config(endpoint: str) -> str:
    return f"""
interval: 1s
jitter: 0
collectors:
  ena: {{enabled: false}}
  ebpf: {{enabled: false}}
exporters:
  otlp: {{endpoint: "{endpoint}", timeout: 2s}}
"""


def _inode(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")[5:-1]
    except OSError:
        return None


def _namespaces(request) -> tuple[set[str], int]:  # type: ignore[no-untyped-def]
    """netns.inode values of a request's series, and the oldest read time among them."""
    inodes, oldest = set(), 2**63
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points = m.sum.data_points if m.HasField("sum") else m.gauge.data_points
                for dp in points:
                    for kv in dp.attributes:
                        if kv.key == "netns.inode":
                            inodes.add(kv.value.string_value)
                            oldest = min(oldest, dp.time_unix_nano)
    return inodes, oldest


def _read_after(sink: OtlpHttpSink, after_ns: int) -> set[str] | None:
    """Namespaces of the latest request whose per-pod series were all read after ``after_ns``."""
    for request in reversed(sink.requests[-3:]):
        inodes, oldest = _namespaces(request)
        if inodes and oldest > after_ns:
            return inodes
    return None


def _in_use(inodes: set[str]) -> set[str]:
    """Those of ``inodes`` that some process's network namespace has now."""
    if not inodes:
        return set()
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        inode = _inode(int(pid))
        if inode in inodes:
            found.add(inode)
    return found


def _median3(rows: list[tuple[int, int, int, float]]) -> tuple[int, ...]:
    return tuple(int(statistics.median(r[i] for r in rows)) for i in range(3))


def _connections(count: int) -> None:
    """Open and close TCP connections over loopback (establish, then TIME_WAIT)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        for _ in range(count):
            with socket.create_connection(server.getsockname()) as client:
                conn, _ = server.accept()
                client.sendall(b"x")
                conn.recv(1)
                conn.close()


def test_churn_keeps_fds_memory_flat_and_exports_exactly_what_exists() -> None:
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    rounds = int(scaled(12, 240))
    sink = OtlpHttpSink()
    agent = Agent(load_text(_config(sink.endpoint), "churn.yaml"), {}, stream=io.StringIO(),
                  metadata=InstanceMetadata())
    live: list = []
    pod = None
    figures: list[tuple[int, int, int, float]] = []  # fds, traced, rss, cpu per round
    missing = stale = reuses = 0
    tracemalloc.start()
    agent.start()
    try:
        wait_until(lambda: sink.requests, 10)
        for n in range(rounds):
            wall, cpu = time.monotonic(), cpu_seconds()
            old, live = live, spawn_bare_namespaces(PER_ROUND)
            old_pod, pod = pod, create_pod(60 + n % 40)
            dead = {_inode(p.pid) for p in [*old, *([old_pod.holder] if old_pod else [])]}
            reap(old)
            if old_pod is not None:
                destroy_pod(old_pod)
            pod.exec("python3", "-c", CONNECT)  # connections inside the pod come and go
            _connections(50)  # and on the node
            mine = {_inode(p.pid) for p in [*live, pod.holder]} - {None}
            changed = time.time_ns()
            exported = wait_until(lambda c=changed: _read_after(sink, c), 5)
            missing += len(mine - exported)
            # the kernel reuses namespace inodes: a dead one may already be someone else's
            reused = _in_use((dead - mine) & exported)
            stale += len((dead - mine) & exported - reused)
            reuses += len(reused)
            del sink.requests[:-1]  # the sink keeps only the latest: its memory is not ours
            figures.append((fd_count(), tracemalloc.get_traced_memory()[0], rss_bytes(),
                            (cpu_seconds() - cpu) / (time.monotonic() - wall)))
        podnet = agent.runners["podnet"].stats
        cycles, errors = podnet.cycles, podnet.errors
    finally:
        agent.stop(flush=False)
        reap(live)
        if pod is not None:
            destroy_pod(pod)
        tracemalloc.stop()
        sink.close()
    # medians of three rounds: one round's figure can catch a sink or GC in mid-flight
    steady, last = _median3(figures[WARMUP:WARMUP + 3]), _median3(figures[-3:])
    record(f"churn {rounds} rounds", namespaces=rounds * PER_ROUND, pods=rounds,
           connections=rounds * 50, podnet_cycles=cycles, podnet_errors=errors,
           missing=missing, stale=stale, inodes_reused=reuses, fds_warm=steady[0], fds_last=last[0],
           traced_warm_kb=steady[1] // KB, traced_last_kb=last[1] // KB,
           rss_warm_mb=steady[2] / 1048576, rss_last_mb=last[2] / 1048576,
           cpu_fraction=statistics.median(f[3] for f in figures))
    assert missing == 0 and stale == 0  # exported namespaces are exactly the live ones
    assert max(f[0] for f in figures[WARMUP:]) <= steady[0] + 2  # flat fd count, every round
    assert last[1] - steady[1] < 512 * KB, [f[1] // KB for f in figures]  # flat traced memory
    assert last[2] - steady[2] < 16 * 1048576  # and RSS
