"""Real getaddrinfo through a real DNS server, in a network namespace of the test's own.

`ip netns exec NAME` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf, so the
scenario's libc asks sdk_support_dns.py on the namespace's 127.0.0.1 and no packet leaves
it. The fake agent listens on a Unix socket, reachable from inside the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NAME = "svc.example.test"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to create a network namespace")


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"sdkdns{os.getpid()}"
    etc = Path("/etc/netns") / name
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(etc, ignore_errors=True)


def _scenario(netns: str, mode: str, agent_socket: str) -> tuple[dict, int]:
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, str(HERE / "sdk_support_dns.py"),
         mode, "53"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        run = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, str(HERE / "sdk_dns_scenario.py"),
             agent_socket, NAME], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=10)
    queries = int(err.strip().rpartition(" ")[2])
    return json.loads(run.stdout), queries


def test_answered_lookup_is_timed_without_error(netns, agent) -> None:
    out, queries = _scenario(netns, "answer", str(agent.socket_path))
    assert out["addresses"] == ["10.1.2.3"]
    assert queries >= 1
    (point,) = out["histogram"]
    assert point["attributes"] == {} and point["count"] == 1
    assert agent.requests == []  # success: no correlation


@pytest.mark.parametrize(("mode", "error_type"), [("nxdomain", "host_not_found"),
                                                  ("servfail", "try_again")])
def test_answers_that_say_no_are_not_lost_packets(netns, agent, mode, error_type) -> None:
    out, _ = _scenario(netns, mode, str(agent.socket_path))
    assert out["error_type"] == error_type
    assert out["packets_lost"] is False and out["duration"] < 0.5
    # the same through requests/urllib3, httpx/httpcore and aiohttp
    assert out["clients"] == dict.fromkeys(("requests", "httpx", "aiohttp"), error_type)
    assert out["verdict"] == "dns_throttled_at_eni"  # the fake agent's answer
    assert agent.requests[0][2]["signal"] == "dns"
    assert agent.requests[0][2]["error_type"] == error_type


def test_silence_is_packets_lost_and_correlated(netns, agent) -> None:
    agent.answer = dict(agent.answer, verdict="nothing_abnormal", findings=[])
    out, queries = _scenario(netns, "silent", str(agent.socket_path))
    assert queries >= 1
    assert out["error_type"] == "timeout" and out["packets_lost"] is True
    assert out["resolver"][:2] == [["127.0.0.1"], 1]
    assert 0.9 <= out["duration"] < 2.5  # one try of timeout:1 (attempts:1)
    assert out["verdict"] == "dns_packets_lost"
    assert "no answer came" in out["summary"]
    body = agent.requests[0][2]
    assert (body["signal"], body["error_type"], body["phase"]) == ("dns", "timeout", "lookup")
    assert {p["attributes"].get("error.type") for p in out["histogram"]} == {"timeout"}
    assert out["clients"] == dict.fromkeys(("requests", "httpx", "aiohttp"), "timeout")
