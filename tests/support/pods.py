"""Test "pods" made of real kernel objects: a network namespace, a veth pair, a process, a cgroup.

Each pod is what the kubelet and a CRI runtime leave on a node: a network
namespace (`ip netns add`) joined to the root namespace by a veth pair with
its own addresses, a long-lived process inside it (the pause container), and
that process moved into a cgroup named like the kubelet's, under the cgroupfs
driver (cgroup v1 cpu controller: /kubepods/burstable/pod<uid>/<container>) or
the systemd driver (cgroup v2: /kubepods.slice/.../kubepods-besteffort-pod<uid_>.slice/
cri-containerd-<id>.scope). Addresses come from 10.251.<n>.0/30 on links that
exist only inside this machine; nothing leaves it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CPU = CGROUP_ROOT / "cpu"
V2 = CGROUP_ROOT / "unified"


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def in_ns(netns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return run("ip", "netns", "exec", netns, *argv, check=check)


@dataclass
class Pod:
    netns: str
    uid: str
    container_id: str
    driver: str  # cgroupfs | systemd
    index: int
    holder: subprocess.Popen | None = None
    cgroup_dirs: list[Path] = field(default_factory=list)

    @property
    def pod_ip(self) -> str:
        return f"10.251.{self.index}.2"

    @property
    def host_ip(self) -> str:
        return f"10.251.{self.index}.1"

    @property
    def host_veth(self) -> str:
        return f"onrh{os.getpid() % 1000}x{self.index}"

    def cgroup_dir(self) -> Path:
        if self.driver == "cgroupfs":
            return V1_CPU / "kubepods" / "burstable" / f"pod{self.uid}" / self.container_id
        slice_uid = self.uid.replace("-", "_")
        return (V2 / "kubepods.slice" / "kubepods-besteffort.slice"
                / f"kubepods-besteffort-pod{slice_uid}.slice"
                / f"cri-containerd-{self.container_id}.scope")

    def pod_cgroup_dir(self) -> Path:
        return self.cgroup_dir().parent

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return in_ns(self.netns, *argv, check=check)


def create_pod(index: int, driver: str = "cgroupfs") -> Pod:
    pod = Pod(f"onrpod{os.getpid() % 1000}x{index}", str(uuid.uuid4()), uuid.uuid4().hex * 2,
              driver, index)
    run("ip", "netns", "add", pod.netns)
    run("ip", "link", "add", pod.host_veth, "type", "veth", "peer", "name", "eth0",
        "netns", pod.netns)
    # No IPv6 on the veth: otherwise neighbour discovery and router solicitations move the
    # counters at random moments after link-up, and the tests compare exact values.
    run("sysctl", "-qw", f"net.ipv6.conf.{pod.host_veth}.disable_ipv6=1")
    pod.exec("sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1")
    run("ip", "addr", "add", f"{pod.host_ip}/30", "dev", pod.host_veth)
    run("ip", "link", "set", pod.host_veth, "up")
    pod.exec("ip", "addr", "add", f"{pod.pod_ip}/30", "dev", "eth0")
    pod.exec("ip", "link", "set", "eth0", "up")
    pod.exec("ip", "link", "set", "lo", "up")
    pod.holder = subprocess.Popen(["ip", "netns", "exec", pod.netns, "sleep", "3600"],
                                  preexec_fn=_die_with_parent)
    directory = pod.cgroup_dir()
    directory.mkdir(parents=True, exist_ok=True)
    pod.cgroup_dirs = [directory, directory.parent]
    (directory / "cgroup.procs").write_text(f"{pod.holder.pid}\n")
    return pod


def destroy_pod(pod: Pod) -> None:
    if pod.holder is not None:
        pod.holder.kill()
        pod.holder.wait()
    run("ip", "netns", "del", pod.netns, check=False)
    run("ip", "link", "del", pod.host_veth, check=False)
    for directory in pod.cgroup_dirs:  # leaf first; empty cgroups only
        with contextlib.suppress(OSError):
            directory.rmdir()


def move_to_pod(pod: Pod, pid: int) -> None:
    (pod.cgroup_dir() / "cgroup.procs").write_text(f"{pid}\n")


def nstat(pod: Pod) -> dict[str, int]:
    """The namespace's counters as `nstat -asz` prints them (absolute, with zeros, no history)."""
    out = pod.exec("nstat", "-asz").stdout
    values = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].isdigit():
            values[fields[0]] = int(fields[1])
    return values


def kernel_supports_test_pods() -> str:
    """'' when root, netns and the cgroup layout are available; otherwise the reason."""
    if os.geteuid() != 0:
        return "creating namespaces and cgroups needs root"
    if not shutil.which("ip") or not shutil.which("nstat"):
        return "iproute2 (ip, nstat) is not installed: run scripts/install-deps.sh"
    if not (V1_CPU / "cgroup.procs").exists() or not (V2 / "cgroup.procs").exists():
        return f"needs the cgroup v1 cpu controller at {V1_CPU} and cgroup2 at {V2}"
    return ""


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG(SIGKILL): a killed test run cannot leave namespaces behind."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def spawn_bare_namespaces(count: int) -> list[subprocess.Popen]:
    """``count`` processes, each alone in a fresh network namespace (cheap pods for churn)."""
    return [subprocess.Popen(["unshare", "--net", "sleep", "600"], preexec_fn=_die_with_parent)
            for _ in range(count)]


def reap(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        proc.kill()
    for proc in processes:
        proc.wait()


@contextlib.contextmanager
def pod_pair(first_index: int):  # type: ignore[no-untyped-def]
    """Two test pods, one per cgroup driver (cgroupfs, systemd), destroyed afterwards."""
    made = [create_pod(first_index, "cgroupfs"), create_pod(first_index + 1, "systemd")]
    try:
        yield made
    finally:
        for pod in made:
            destroy_pod(pod)
