"""Probe tcprtt against real namespaces: the RTT it reports is the kernel's, as `ss -ti`
prints it inside the namespace, IPv4 and IPv6 alike; the agent's thread stays in its own
namespace; a namespace without connections exports only its socket count."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from otel_netreceiver.collectors.podnet.probes import PROBES, Target
from otel_netreceiver.collectors.podnet.tcprtt import tcprtt

pytestmark = pytest.mark.root

# In a fresh namespace: loopback up, two IPv4 and two IPv6 connections that carried data,
# held open until stdin closes.
CONNECTED = r"""
import socket, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
held = []
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")) * 2:
    server = socket.socket(family); server.bind((host, 0)); server.listen()
    client = socket.create_connection(server.getsockname()[:2]); peer, _ = server.accept()
    for _ in range(30):
        client.sendall(b"x" * 1000); peer.recv(4096); peer.sendall(b"y"); client.recv(16)
    held += [server, client, peer]
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def namespace():  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("unshare --net and setns need root")
    proc = subprocess.Popen(["unshare", "--net", sys.executable, "-c", CONNECTED],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc.pid
    proc.communicate("", timeout=10)


def _values(points) -> dict[tuple[str, str], float]:  # type: ignore[no-untyped-def]
    return {(p.metric.name, dict(p.attributes).get("tcp.rtt.statistic", "")): p.value
            for p in points}


def _ss_rtts_us(pid: int) -> list[tuple[float, float]]:
    out = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "ss", "-tin", "state",
                          "established"], capture_output=True, text=True, check=True).stdout
    return [(float(a) * 1000, float(b) * 1000)
            for a, b in re.findall(r"\brtt:([\d.]+)/([\d.]+)", out)]


def test_the_probe_reports_the_kernels_rtt_of_every_established_socket(namespace) -> None:
    home = os.readlink("/proc/thread-self/ns/net")
    attributes = (("k8s.pod.uid", "uid-rtt"),)
    values = _values(tcprtt(Target("/proc", namespace, (namespace,), attributes, None)))
    assert os.readlink("/proc/thread-self/ns/net") == home  # never left its own namespace
    ss = _ss_rtts_us(namespace)
    assert len(ss) == 8 and values[("netreceiver.tcp.rtt.sockets", "")] == 8  # v4 and v6
    # ss prints milliseconds with three decimals: the same microseconds, rounded
    assert values[("netreceiver.tcp.rtt", "max")] * 1e6 == pytest.approx(
        max(s for s, _ in ss), abs=1)
    assert values[("netreceiver.tcp.rtt", "mean")] * 1e6 == pytest.approx(
        sum(s for s, _ in ss) / 8, abs=1)
    assert values[("netreceiver.tcp.rtt.variation", "max")] * 1e6 == pytest.approx(
        max(v for _, v in ss), abs=1)
    # loopback: microseconds, far below any rule's threshold
    assert 0 < values[("netreceiver.tcp.rtt", "min")] <= values[("netreceiver.tcp.rtt", "max")]
    assert values[("netreceiver.tcp.rtt", "max")] < 0.01
    assert PROBES["tcprtt"] is tcprtt  # the podnet collector runs it by this name


def test_a_namespace_without_connections_exports_only_its_count() -> None:
    if os.geteuid() != 0:
        pytest.skip("unshare --net and setns need root")
    proc = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        for _ in range(50):  # until unshare has exec'd sleep inside the new namespace
            if os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            subprocess.run(["sleep", "0.05"], check=True)
        points = tcprtt(Target("/proc", proc.pid, (proc.pid,), (), None))
        assert _values(points) == {("netreceiver.tcp.rtt.sockets", ""): 0}
    finally:
        proc.kill()
        proc.wait()
    # the process is gone: the probe says nothing rather than failing the cycle
    assert tcprtt(Target("/proc", proc.pid, (proc.pid,), (), None)) == []
