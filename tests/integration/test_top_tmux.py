"""``otel-netreceiver top`` in a real terminal (tmux) against a running agent with test pods.

The agent runs as its own process (so it can be stopped under the view) with the eBPF
packetloss probe and the Kubernetes API double naming three test pods (netns, veth,
kubelet cgroups). One pod overflows a UDP receive buffer in a loop: the kernel frees those
datagrams as drops in that pod's namespace. tmux draws ``top`` at 120x40, the test sends
keys and reads the pane as a person would see it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.k8s_api import KubeApiDouble, make_pod, write_kubeconfig
from tests.support.pods import create_pod, destroy_pod, kernel_supports_test_pods

pytestmark = pytest.mark.root
NODE = "node-top"
REPO = Path(__file__).resolve().parents[2]

# Runs inside the dropping pod: a receiver that never reads, a sender that fills its buffer.
DROPPER = r"""
import socket, sys, time
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); rx.bind(("127.0.0.1", 0))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for _ in range(100): tx.sendto(b"x" * 1000, rx.getsockname())
    time.sleep(0.1)
"""


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), str(REPO / "sdk"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "NO_COLOR": "1"}


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_netreceiver", *args], env=_env(),
                          capture_output=True, text=True, timeout=60, check=check)


def _wait(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


class Tmux:
    """One private tmux server (its socket in the test's directory) with one session
    running ``top``."""

    def __init__(self, command: str, width: int, height: int, socket: Path) -> None:
        self.socket = socket
        self.tmux("new-session", "-d", "-s", "top", "-x", str(width), "-y", str(height),
                  command)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, check=True, timeout=10, env=_env()).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "top", *keys)

    def screen(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-t", "top").splitlines()

    def wait(self, predicate, what: str, timeout: float = 20.0) -> list[str]:  # type: ignore[no-untyped-def]
        def check() -> list[str] | None:
            lines = self.screen()
            return lines if predicate(lines) else None
        try:
            return _wait(check, timeout, what)
        except AssertionError:
            raise AssertionError(f"waiting for {what}; the screen:\n" +
                                 "\n".join(self.screen())) from None

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True,
                       check=False)
        self.socket.unlink(missing_ok=True)


def _first_row(lines: list[str]) -> str:
    """The first row under the node's (the table's top pod)."""
    for index, line in enumerate(lines):
        if "(node)" in line:
            rest = [x for x in lines[index + 1:] if x.strip()]
            return rest[0] if rest else ""
    return ""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed: run scripts/install-deps.sh")
    tmp = tmp_path_factory.mktemp("top")
    api = KubeApiDouble()
    pods = [create_pod(171, "cgroupfs"), create_pod(172, "systemd"), create_pod(173, "cgroupfs")]
    names = (("web-a", "shop"), ("web-b", "shop"), ("db-0", "data"))
    for pod, (name, namespace) in zip(pods, names, strict=True):
        api.add(make_pod(name, namespace, NODE, uid=pod.uid, ip=pod.pod_ip))
    sock = str(tmp / "api.sock")
    config = tmp / "agent.yaml"
    config.write_text(f"""
interval: 1s
node_name: {NODE}
kubernetes: {{kubeconfig: "{write_kubeconfig(tmp / 'kubeconfig', api.url)}"}}
collectors: {{ebpf: {{probes: [packetloss]}}, ena: {{enabled: false}}}}
exporters: {{console: {{enabled: false}}}}
correlation: {{socket: "{sock}"}}
""")
    log = (tmp / "agent.log").open("w")
    agent = subprocess.Popen([sys.executable, "-m", "otel_netreceiver", "run", "-c", str(config)],
                             env=_env(), stdout=log, stderr=subprocess.STDOUT)
    dropper = subprocess.Popen(["ip", "netns", "exec", pods[1].netns, sys.executable, "-c",
                                DROPPER, "600"])
    screen = None
    try:
        def named() -> bool:
            out = _cli("top", "--socket", sock, "--format", "json", check=False)
            rows = json.loads(out.stdout)["rows"] if out.returncode == 0 else []
            return {r["name"] for r in rows} >= {"web-a", "web-b", "db-0"}
        _wait(named, 120, "the agent's top to name the three pods")
        screen = Tmux(f"{sys.executable} -m otel_netreceiver top --socket {sock} --refresh 0.5 "
                      f"--sort pkts_in; echo top exited $?; sleep 600", 120, 40,
                      tmp / "tmux.sock")
        yield {"agent": agent, "pods": pods, "socket": sock, "screen": screen,
               "log": tmp / "agent.log"}
    finally:
        if screen is not None:
            screen.close()
        for proc in (dropper, agent):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        for pod in pods:
            destroy_pod(pod)
        api.close()


def test_a_dropping_pod_rises_to_the_top_when_sorted_by_drops(node):
    screen = node["screen"]
    screen.wait(lambda lines: "pkt in/s↓" in "\n".join(lines), "the view sorted by pkt in/s")
    screen.keys("3")  # the third column: drops
    lines = screen.wait(lambda lines: "drops/s↓" in lines[1] + lines[2]
                        and "shop/web-b" in _first_row(lines),
                        "web-b first when sorted by drops")
    assert _first_row(lines).endswith("SOCKET_RCVBUFF")  # the top drop reason
    doc = json.loads(_cli("top", "--socket", node["socket"], "--format", "json").stdout)
    web_b = next(r for r in doc["rows"] if r["name"] == "web-b")
    others = [r["values"]["drops"] for r in doc["rows"] if r["kind"] == "pod" and r is not web_b]
    assert web_b["values"]["drops"] > max(others)
    assert web_b["tops"]["drops"] == "SOCKET_RCVBUFF"
    assert "Traceback" not in "\n".join(lines)


def test_the_filter_and_the_details_pane_show_the_right_pod(node):
    screen, dropping = node["screen"], node["pods"][1]
    screen.keys("/", "db")
    screen.wait(lambda lines: "filter: db_" in lines[0], "the filter being typed")
    screen.keys("Enter")
    lines = screen.wait(lambda lines: "1 rows" in lines[0], "one row left by the filter db")
    assert "data/db-0" in _first_row(lines)
    assert not any("shop/" in line for line in lines)
    screen.keys("Escape", "/", "web-b", "Enter")
    screen.wait(lambda lines: "shop/web-b" in _first_row(lines) and "1 rows" in lines[0],
                "the filter web-b")
    screen.keys("Enter")
    lines = screen.wait(lambda lines: any("moving over" in line for line in lines),
                        "the details pane")
    text = "\n".join(lines)
    assert f"shop/web-b  (pod, uid {dropping.uid})" in text
    assert "netreceiver.pod.packet.drops{drop.reason=SOCKET_RCVBUFF}" in text
    assert "netreceiver.udp.rcvbuf_errors" in text  # the same overflow, counted by /proc
    assert "shop/web-a" not in text and "data/db-0" not in text
    screen.keys("Escape", "Escape")
    screen.wait(lambda lines: "filter" not in lines[0] and "(node)" in "\n".join(lines),
                "the table again, unfiltered")


def test_resizing_to_80x24_stays_readable(node):
    screen = node["screen"]
    if not any("drops/s↓" in line for line in screen.wait(lambda lines: True, "a screen")):
        screen.keys("3")  # sorted by drops, whatever an earlier test left
        screen.wait(lambda lines: any("drops/s↓" in line for line in lines), "sort by drops")
    screen.tmux("resize-window", "-t", "top", "-x", "80", "-y", "24")
    lines = screen.wait(lambda lines: "cols (widen)" in lines[0] and len(lines) <= 24,
                        "the 80x24 layout")
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("otel-netreceiver top  node-top")
    assert "drops/s↓" in "\n".join(lines[1:3])  # the sorted column stays
    assert "shop/web-b" in _first_row(lines)
    assert any(line.startswith("q quit") for line in lines)  # the keys stay on screen
    screen.tmux("resize-window", "-t", "top", "-x", "120", "-y", "40")


def test_the_agent_stopping_is_reported_not_a_traceback(node):
    screen = node["screen"]
    node["agent"].send_signal(signal.SIGTERM)
    node["agent"].wait(timeout=30)
    def flat(lines: list[str]) -> str:
        return " ".join(" ".join(lines).split())  # the banner may wrap
    # while it shuts down the agent may first reset a connection; then its socket is gone
    lines = screen.wait(lambda lines: "AGENT UNAVAILABLE, showing its last answer: no agent "
                        "is running here" in flat(lines), "the agent's absence on screen")
    assert "Traceback" not in flat(lines)
    assert "shop/web-b" in flat(lines)  # the last answer stays
    screen.keys("q")
    lines = screen.wait(lambda lines: any("top exited" in line for line in lines),
                        "top to quit")
    assert "top exited 0" in "\n".join(lines) and "Traceback" not in "\n".join(lines)
    out = _cli("top", "--socket", node["socket"], "--once", check=False)
    assert out.returncode == 1 and "start one with" in out.stderr
