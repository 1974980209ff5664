"""Kernel and host surprises: each costs at most its own points or probe, never the agent.

- an injected proc_root whose files vanish, are cut short or whose process
  directories disappear while the threaded agent reads them;
- real network namespaces destroyed while the collector reads them (root);
- a real interface renamed again and again (root);
- a real pod cgroup removed under a running pod (root);
- tracefs missing (an injected path), a broken BTF file, bcc switched off, and
  BPF loading refused by the kernel (the command run without CAP_BPF,
  CAP_PERFMON and CAP_SYS_ADMIN).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.runtime.agent import Agent
from otel_netreceiver.runtime.scheduler import CollectorRunner
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.pods import (
    create_pod,
    destroy_pod,
    kernel_supports_test_pods,
    reap,
    run,
)
from tests.support.soak import record, scaled, wait_until

pytestmark = pytest.mark.soak

ROOT = Path(__file__).parent.parent.parent
DATA_NET = ROOT / "tests" / "data" / "proc" / "1" / "net"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_EC2_METADATA_DISABLED": "true"}
PIDS = (1, 101, 102, 103, 104)


def _agent(text: str) -> Agent:
    return Agent(load_text(text, "surprise.yaml"), {}, stream=io.StringIO(),
                 metadata=InstanceMetadata())


@contextmanager
def _running(agent: Agent) -> Iterator[Agent]:
    agent.start()
    try:
        yield agent
    finally:
        agent.stop(flush=False)


def _raised(caplog: pytest.LogCaptureFixture, collector: str) -> list[str]:
    """Cycles of ``collector`` that raised (partial errors are reported, not raised)."""
    prefix = f"collector {collector}: "
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)
            and not r.getMessage().startswith(prefix + "partial")]


def _fake_proc(root: Path) -> None:
    """A /proc with five processes in five namespaces, files from a real kernel."""
    for index, pid in enumerate(PIDS):
        base = root / str(pid)
        shutil.copytree(DATA_NET, base / "net")
        (base / "ns").mkdir()
        (base / "ns" / "net").symlink_to(f"net:[{4026532000 + index}]")
        (base / "comm").write_text(f"proc{pid}\n")
        (base / "cgroup").write_text("0::/system.slice/test.service\n")


class Vandal:
    """Deletes, truncates and removes things under a fake /proc while it is read."""

    def __init__(self, root: Path, seed: int = 8) -> None:
        self._root, self._rng = root, random.Random(seed)
        self.acts = {"file deleted": 0, "file cut short": 0, "process gone": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            pid = self._rng.choice(PIDS[1:])  # PID 1 (the host namespace) is left alone
            base = self._root / str(pid)
            if not base.exists():
                _restore(self._root, pid)
                continue
            act = self._rng.choice(list(self.acts))
            name = self._rng.choice(["dev", "snmp", "netstat", "snmp6", "sockstat"])
            if act == "process gone":
                shutil.rmtree(base, ignore_errors=True)
            elif act == "file deleted":
                (base / "net" / name).unlink(missing_ok=True)
            else:
                text = (DATA_NET / name).read_text()
                (base / "net" / name).write_text(text[:self._rng.randrange(len(text))])
            self.acts[act] += 1

    def __enter__(self) -> Vandal:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid in PIDS[1:]:
            shutil.rmtree(self._root / str(pid), ignore_errors=True)
            _restore(self._root, pid)


def _restore(root: Path, pid: int) -> None:
    base = root / str(pid)
    shutil.copytree(DATA_NET, base / "net", dirs_exist_ok=True)
    (base / "ns").mkdir(exist_ok=True)
    link = base / "ns" / "net"
    if not link.is_symlink():
        link.symlink_to(f"net:[{4026532000 + PIDS.index(pid)}]")


def _namespaces(agent: Agent) -> set[str]:
    return {dict(p.attributes).get("netns.inode") for m in agent.store.snapshot().metrics
            for p in m.points} - {None}


def test_proc_files_vanishing_mid_read_cost_only_their_points(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    proc = tmp_path / "proc"
    _fake_proc(proc)
    agent = _agent(f"""
interval: 1s
jitter: 0
proc_root: {proc}
sys_root: /nonexistent
collectors:
  ena: {{enabled: false}}
  ebpf: {{enabled: false}}
  nodenet: {{enabled: false}}
  podnet: {{probes: [netdev, snmp, netstat, snmp6, sockstat, tcpsummary], export_quiet: true}}
exporters: {{console: {{enabled: false}}}}
""")
    duration = scaled(6.0, 300.0)
    host = "4026532000"
    with _running(agent):
        wait_until(lambda: len(_namespaces(agent)) == len(PIDS), 10)
        host_series = sum(1 for m in agent.store.snapshot().metrics for p in m.points
                          if dict(p.attributes).get("netns.inode") == host)
        host_counts = []
        with Vandal(proc) as vandal:
            end = time.monotonic() + duration
            while time.monotonic() < end:
                host_counts.append(sum(1 for m in agent.store.snapshot().metrics
                                       for p in m.points
                                       if dict(p.attributes).get("netns.inode") == host))
                time.sleep(0.1)
        stats = agent.runners["podnet"].stats
        cycles, errors = stats.cycles, stats.errors
        # restored: the next cycle sees every namespace again, with no error
        wait_until(lambda: len(_namespaces(agent)) == len(PIDS)
                   and agent.runners["podnet"].stats.last_error == "", 5)
        alive = all(r.alive() for r in agent.runners.values())
    record(f"/proc vandalised {duration:.0f}s", **vandal.acts, podnet_cycles=cycles,
           partial_cycles=errors, raised_cycles=len(_raised(caplog, "podnet")))
    assert alive and cycles >= duration - 1
    assert sum(vandal.acts.values()) > 50
    assert _raised(caplog, "podnet") == []  # never a failed cycle: only points were lost
    assert set(host_counts) == {host_series}  # the untouched namespace lost no point, ever
    assert errors >= 1  # cut-short files were reported as parse errors, not swallowed


def test_real_namespaces_destroyed_while_being_read() -> None:
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    runner = CollectorRunner(PodNetCollector(PodNetConfig(), "/proc", NoPods()), SeriesStore(),
                             1.0, 0.0)
    stop, rng, churned = threading.Event(), random.Random(3), [0]

    def churn() -> None:
        while not stop.is_set():
            procs = [subprocess.Popen(["unshare", "--net", "sleep", "30"]) for _ in range(10)]
            time.sleep(rng.uniform(0.0, 0.05))
            reap(procs)  # killed at random points of the collector's cycle
            churned[0] += len(procs)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    duration, end, raised = scaled(5.0, 120.0), 0.0, []
    try:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            if not runner.run_once():
                raised.append(runner.stats.last_error)
    finally:
        stop.set()
        thread.join()
    record(f"real namespaces destroyed mid-read {duration:.0f}s", namespaces_killed=churned[0],
           cycles=runner.stats.cycles, failed_cycles=len(raised),
           partial_cycles=runner.stats.errors - len(raised))
    assert churned[0] >= 50 and runner.stats.cycles >= 20
    assert raised == []  # a namespace that dies mid-read is left out, not an error
    assert runner.stats.errors == 0


def test_interface_renamed_over_and_over(caplog: pytest.LogCaptureFixture) -> None:
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("creating and renaming a veth pair needs root and iproute2")
    tag = f"onrsk{os.getpid() % 10000}"
    names = [f"{tag}a", f"{tag}b"]
    run("ip", "link", "add", names[0], "type", "veth", "peer", "name", f"{tag}p")
    agent = _agent(f"""
interval: 1s
jitter: 0
collectors:
  ena: {{enabled: false}}
  ebpf: {{enabled: false}}
  podnet: {{enabled: false}}
  nodenet: {{enabled: false}}
  ethtool: {{enabled: true, interfaces: ["{tag}*"]}}
exporters: {{console: {{enabled: false}}}}
""")

    def seen(collector: str) -> set[str]:
        return {dict(p.attributes).get("network.interface.name") for m in
                agent.store.snapshot().metrics for p in m.points
                if m.metric.name.startswith("system.network" if collector == "netdev"
                                            else "netreceiver.ethtool")} & {*names, f"{tag}p"}

    current, renames = 0, 0
    try:
        with _running(agent):
            wait_until(lambda: names[0] in seen("netdev") and names[0] in seen("ethtool"), 10)
            end = time.monotonic() + scaled(5.0, 120.0)
            while time.monotonic() < end:
                run("ip", "link", "set", names[current], "name", names[1 - current])
                current, renames = 1 - current, renames + 1
                time.sleep(0.05)
            # the series follow the current name within a cycle, the old name is gone
            wait_until(lambda: seen("netdev") == {names[current], f"{tag}p"}
                       and seen("ethtool") == {names[current], f"{tag}p"}, 5)
            alive = all(r.alive() for r in agent.runners.values())
    finally:
        run("ip", "link", "del", names[current], check=False)
    record("interface renamed", renames=renames,
           raised_cycles=len(_raised(caplog, "netdev") + _raised(caplog, "ethtool")))
    assert alive and renames >= 20
    assert _raised(caplog, "netdev") == [] and _raised(caplog, "ethtool") == []


def test_pod_cgroup_removed_under_a_running_pod() -> None:
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    pod = create_pod(41, "cgroupfs")
    agent = _agent("""
interval: 1s
jitter: 0
collectors:
  ena: {enabled: false}
  ebpf: {enabled: false}
  nodenet: {enabled: false}
  netdev: {enabled: false}
  podnet: {probes: [netdev, cpu], export_quiet: true}
exporters: {console: {enabled: false}}
""")

    def pod_metrics() -> set[str]:
        return {m.metric.name for m in agent.store.snapshot().metrics for p in m.points
                if dict(p.attributes).get("k8s.pod.uid") == pod.uid}

    try:
        with _running(agent):
            wait_until(lambda: "netreceiver.pod.cpu.periods" in pod_metrics(), 10)
            errors = agent.runners["podnet"].stats.errors
            # what the kubelet does when a pod's cgroup goes: processes out, directory gone
            Path("/sys/fs/cgroup/cpu/cgroup.procs").write_text(f"{pod.holder.pid}\n")
            for directory in pod.cgroup_dirs:
                directory.rmdir()
            left = wait_until(lambda: (lambda m: m if m and "netreceiver.pod.cpu.periods"
                                       not in m else None)(pod_metrics()), 5)
            after = agent.runners["podnet"].stats.errors
    finally:
        pod.cgroup_dirs = []
        destroy_pod(pod)
    record("pod cgroup removed", metrics_left=len(left), new_errors=after - errors)
    assert any(name.startswith("system.network") or "network" in name for name in left)
    assert after == errors  # a cgroup that went is not an error: only its points go


def _probes(text: str, *prefix: str) -> dict[str, dict]:
    cfg_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    path = cfg_dir / f"onr-soak-probes-{os.getpid()}.yaml"
    path.write_text(text)
    try:
        result = subprocess.run([*prefix, sys.executable, "-m", "otel_netreceiver", "once",
                                 "-c", str(path), "--format", "json"], env=ENV, cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
    finally:
        path.unlink()
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    data["probes"] = {p["name"]: p for p in data["probes"]}
    return data


EBPF_BASE = """
interval: 1s
collectors:
  ena: {enabled: false}
  podnet: {enabled: false}
  ebpf:
    probes: [packetloss, tcpreset]
"""


@pytest.mark.parametrize(("case", "extra", "reason"), [
    ("tracefs missing", "    tracefs_path: /nonexistent/tracing\n", "tracefs is not mounted"),
    ("BTF file missing", "    btf_path: /nonexistent/vmlinux\n", "no BTF"),
    ("BTF file garbage", "    btf_path: {garbage}\n", "load failed: BtfError: bad BTF magic"),
    ("bcc absent", "    use_bcc: false\n", "bcc disabled in configuration"),
])
def test_ebpf_prerequisite_missing_costs_only_the_probes(case: str, extra: str, reason: str,
                                                         tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the eBPF checks past permissions need root")
    garbage = tmp_path / "vmlinux"
    garbage.write_bytes(b"\x00not BTF at all" * 10)
    data = _probes(EBPF_BASE + extra.format(garbage=garbage))
    _assert_only_ebpf_lost(data, reason)
    record(f"eBPF: {case}", ebpf_active=data["probes"]["ebpf"]["active"],
           other_series=len(data["series"]))


def test_bpf_load_refused_without_capabilities() -> None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("dropping capabilities needs root and setpriv (util-linux)")
    data = _probes(EBPF_BASE, "setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin", "--")
    _assert_only_ebpf_lost(data, "needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)")
    record("eBPF: capabilities dropped", other_series=len(data["series"]))


def _assert_only_ebpf_lost(data: dict, reason: str) -> None:
    probes = data["probes"]
    assert not probes["ebpf"]["active"]
    for probe in ("packetloss", "tcpreset"):
        assert f"{probe}: unavailable ({reason}" in probes["ebpf"]["reason"], probes["ebpf"]
    assert probes["netdev"]["active"] and probes["nodenet"]["active"]
    available = {s["attributes"]["collector"]: s["value"] for s in data["series"]
                 if s["metric"] == "netreceiver.collector.available"}
    assert available["ebpf"] == 0 and available["netdev"] == 1  # in self-telemetry too
    names = {s["metric"] for s in data["series"]}
    assert "system.network.io" in names  # the rest of the agent collected as usual


