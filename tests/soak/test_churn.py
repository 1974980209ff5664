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
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.otlp_sink import OtlpHttpSink
from tests.support.pods import (
    _die_with_parent,
    create_pod,
    destroy_pod,
    kernel_supports_test_pods,
    reap,
)
from tests.support.soak import cpu_seconds, fd_count, record, rss_bytes, scaled, wait_until

pytestmark = [pytest.mark.soak, pytest.mark.root]
PER_ROUND, WARMUP = 8, 4
TAG = f"onrchurn{os.getpid() % 10**6}"  # comm of this test's namespaces (at most 15 chars)
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


def _namespaces(request) -> tuple[dict[str, str], int]:  # type: ignore[no-untyped-def]
    """netns.inode → who (process.command or k8s.pod.uid) of a request's series, and when
    they were read (the latest point time: a first-move baseline point carries an older one)."""
    found, read_at = {}, 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points = m.sum.data_points if m.HasField("sum") else m.gauge.data_points
                for dp in points:
                    labels = {kv.key: kv.value.string_value for kv in dp.attributes}
                    if "netns.inode" in labels:
                        found[labels["netns.inode"]] = labels.get(
                            "process.command") or labels.get("k8s.pod.uid", "")
                        read_at = max(read_at, dp.time_unix_nano)
    return found, read_at


def _read_after(sink: OtlpHttpSink, after_ns: int) -> dict[str, str] | None:
    """Namespaces of the latest request whose per-pod series were read after ``after_ns``."""
    for request in reversed(sink.requests[-3:]):
        found, read_at = _namespaces(request)
        if found and read_at > after_ns:
            return found
    return None


def _spawn(command: Path, count: int) -> list[subprocess.Popen]:
    """Processes alone in fresh namespaces, under a command name only this test uses.

    Other tests on the machine churn namespaces too, and the kernel reuses namespace
    inodes: the command name tells this test's namespaces from theirs.
    """
    return [subprocess.Popen(["unshare", "--net", str(command), "600"],
                             preexec_fn=_die_with_parent) for _ in range(count)]


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
    command = Path(tempfile.mkdtemp()) / TAG
    command.symlink_to(shutil.which("sleep") or "/bin/sleep")  # comm is the link's name
    tracemalloc.start()
    agent.start()
    try:
        wait_until(lambda: sink.requests, 10)
        for n in range(rounds):
            wall, cpu = time.monotonic(), cpu_seconds()
            old, live = live, _spawn(command, PER_ROUND)
            old_pod, pod = pod, create_pod(60 + n % 40)
            dead = {_inode(p.pid) for p in old} | ({_inode(old_pod.holder.pid)} if old_pod
                                                   else set())
            dead_who = {TAG} | ({old_pod.uid} if old_pod else set())
            reap(old)
            if old_pod is not None:
                destroy_pod(old_pod)
            pod.exec("python3", "-c", CONNECT)  # connections inside the pod come and go
            _connections(50)  # and on the node
            mine = {_inode(p.pid) for p in [*live, pod.holder]} - {None}
            changed = time.time_ns()
            exported = wait_until(lambda c=changed: _read_after(sink, c), 5)
            missing += len(mine - set(exported))
            for inode in (dead - mine) & set(exported):
                if exported[inode] in dead_who:
                    stale += 1  # a dead namespace of this test still exported
                else:
                    reuses += 1  # the kernel gave its inode to another test's namespace
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
        shutil.rmtree(command.parent)
        tracemalloc.stop()
        sink.close()
    # medians of three rounds: one round's figure can catch a sink or GC in mid-flight
    steady, last = _median3(figures[WARMUP:WARMUP + 3]), _median3(figures[-3:])
    middle = _median3(figures[len(figures) // 2 - 1:len(figures) // 2 + 2])  # the trend
    record(f"churn {rounds} rounds", namespaces=rounds * PER_ROUND, pods=rounds,
           connections=rounds * 70, podnet_cycles=cycles, podnet_errors=errors,
           missing=missing, stale=stale, inodes_reused=reuses, fds_warm=steady[0], fds_last=last[0],
           traced_warm_kb=steady[1] // KB, traced_mid_kb=middle[1] // KB,
           traced_last_kb=last[1] // KB, rss_warm_mb=steady[2] / 1048576,
           rss_mid_mb=middle[2] / 1048576, rss_last_mb=last[2] / 1048576,
           cpu_fraction=statistics.median(f[3] for f in figures))
    assert missing == 0 and stale == 0  # exported namespaces are exactly the live ones
    assert max(f[0] for f in figures[WARMUP:]) <= steady[0] + 2  # flat fd count, every round
    assert last[1] - steady[1] < 512 * KB, [f[1] // KB for f in figures]  # flat traced memory
    # RSS is the whole test process, sink included: protobuf parsing and subprocess
    # buffers are not traced and the allocator keeps freed arenas, so it only catches a
    # runaway (the full run saw +18 MB on a 53 MB process, with traced memory back down)
    assert last[2] - steady[2] < 48 * 1048576
