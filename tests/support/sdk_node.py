"""A node for the SDK scenarios: test pods that route to each other, the agent, the apps.

Pods are tests/support/pods.py's (netns + veth + kubelet-named cgroup). Pod-to-pod traffic
goes through the root namespace as on a node with a CNI that routes: each pod gets a
default route via its veth's node side, and forwarding is switched on for those veths only
(IPv4 forwarding is decided per input device, net/ipv4/route.c ip_route_input_slow checks
IN_DEV_FORWARD of the device the packet came in on), so the machine's own setting stays.

`AppProcess` runs tests/support/sdk_app.py inside a pod's network namespace and, before it
does anything, inside the pod's cgroup, so the agent's SO_PEERCRED → cgroup → pod
identification on the Unix socket sees the pod, and its TCP identification sees the pod IP.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from otel_netreceiver.catalogue import metric
from otel_netreceiver.naming import prometheus_name, sanitize
from tests.support.pods import Pod, _die_with_parent, move_to_pod, run

HERE = Path(__file__).resolve().parent
NODE = "sdk-node"
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')  # label="value" pairs


def link_pods(pods: list[Pod]) -> None:
    for pod in pods:
        pod.exec("ip", "route", "add", "default", "via", pod.host_ip)
        run("sysctl", "-qw", f"net.ipv4.conf.{pod.host_veth}.forwarding=1")


@contextlib.contextmanager
def resolv_conf(pod: Pod, text: str) -> Iterator[Path]:
    """/etc/netns/<netns>/resolv.conf: what `ip netns exec` bind-mounts over /etc/resolv.conf."""
    directory = Path("/etc/netns") / pod.netns
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "resolv.conf").write_text(text)
    try:
        yield directory / "resolv.conf"
    finally:
        shutil.rmtree(directory, ignore_errors=True)



def _read_line(proc: subprocess.Popen, timeout: float, what: str) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise AssertionError(f"{what}: no output within {timeout} s; stderr: {err[-2000:]}")
    return line


class AppProcess:
    """sdk_app.py in a pod: one JSON command in, one JSON result out."""

    def __init__(self, pod: Pod, env: dict[str, str]) -> None:
        base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "K8S_NODE_NAME": NODE, "K8S_POD_NAME": f"app-{pod.index}",
                "K8S_POD_NAMESPACE": "shop", "K8S_POD_UID": pod.uid}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", pod.netns, sys.executable, str(HERE / "sdk_app.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=base | env, preexec_fn=_die_with_parent)
        pid = json.loads(_read_line(self.proc, 30, "sdk_app start"))["ready"]
        assert pid == self.proc.pid  # `ip netns exec` execs the program in its own process
        move_to_pod(pod, pid)  # before its first call: the agent names callers by cgroup

    def call(self, op: str, timeout: float = 20, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return json.loads(_read_line(self.proc, timeout, f"sdk_app {op}"))

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.call_quit()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def call_quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write('{"op": "quit"}\n')
        self.proc.stdin.close()


def start_peer(pod: Pod, *args: str) -> subprocess.Popen:
    """peer_pod.py in a pod, once it printed "ready"."""
    proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, sys.executable,
                             str(HERE / "peer_pod.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
    assert _read_line(proc, 30, f"peer_pod {args[0]}").strip() == "ready"
    return proc


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def scrape_when(port: int, name: str, timeout: float = 5.0, **labels: str) -> str:
    """/metrics once it shows ``name`` (with ``labels``) moved: the store exports what the
    collectors read at their interval, while an answer reads a fresher sample."""
    return wait_for(lambda: next((t for t in [scrape(port)] if exported(t, name, **labels)),
                                 None), timeout, f"/metrics shows {name} {labels}")


def exported(text: str, name: str, **labels: str) -> float:
    """Sum of the /metrics samples of catalogue metric ``name`` that carry ``labels``."""
    prom = prometheus_name(metric(name))
    want = {sanitize(k): v for k, v in labels.items()}
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(prom + "{"):
            continue
        head, _, value = line.rpartition(" ")
        have = dict(_LABEL.findall(head[len(prom):]))
        if all(have.get(k) == v for k, v in want.items()):
            total += float(value)
    return total


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout} s: {what}")
