"""A pod's failing lookups, told back to it by the real node API with the dns probe on.

Pod A's resolv.conf says `options timeout:1 attempts:1` and points at pod B, which runs
tests/support/dns_server.py (`late.*` answered after 1.5 s, `drop.*` never). A sends, with
its own resolver (tests/support/dns_client.py), a query it waits 3 s for (a late answer
after its timeout), one it gives up on at 1.2 s (the answer finds the socket gone) and
one to `drop`; then glibc looks up `drop.test` and fails, and the SDK's explain() asks the
agent over its Unix socket. The evidence must be A's exact counts (checked against the
server's own log), and pod C, asking too, must get nothing of A's.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.pods import Pod, _die_with_parent, create_pod, destroy_pod
from tests.support.sdk_node import link_pods

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"
CLIENT, SERVER, OTHER = 81, 82, 83
QUERIES = ["late.test/A/udp/3", "late.test/A/udp/1.2", "drop.test/A/udp/1.2"]

# Runs in pod A (its netns and cgroup): a glibc lookup that times out, then explain().
EXPLAIN = r"""
import json, socket, sys, time
from otel_netreceiver_sdk import explain
try:
    socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM)
    raise SystemExit("the lookup did not fail")
except socket.gaierror as exc:
    failure = exc
time.sleep(float(sys.argv[2]))  # let the last late answer land before asking
e = explain(failure)
print(json.dumps({"summary": e.summary, "dns_evidence": e.dns_evidence,
                  "status": e.agent_status, "detail": e.agent_detail}))
"""

# Runs in a pod: the raw answer of one question over the Unix socket.
ASK = r"""
import http.client, json, socket, sys
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sys.argv[1])
conn = Unix("agent", timeout=5)
conn.request("POST", "/v1/correlate", body=json.dumps({"signal": "dns",
             "error_type": "timeout"}), headers={"Content-Type": "application/json"})
print(conn.getresponse().read().decode())
"""


def _netns_name(index: int) -> str:
    return f"onrpod{os.getpid() % 1000}x{index}"  # as tests/support/pods.py names it


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("nodeapi-dns")
    conf = Path("/etc/netns") / _netns_name(CLIENT)
    conf.mkdir(parents=True, exist_ok=True)
    made: list[Pod] = []
    agent = None
    # before A's first process starts: `ip netns exec` bind-mounts it (B's address, as
    # tests/support/pods.py gives it)
    conf.joinpath("resolv.conf").write_text(
        f"nameserver 10.251.{SERVER}.2\noptions timeout:1 attempts:1\n")
    try:
        made = [create_pod(CLIENT), create_pod(SERVER, "systemd"), create_pod(OTHER)]
        server = made[1]
        assert server.pod_ip == f"10.251.{SERVER}.2"
        link_pods(made)
        sock = str(tmp / "api.sock")
        config = f"""
interval: 1s
node_name: dns-node
collectors:
  ena: {{enabled: false}}
  ebpf: {{probes: [dns], dns: {{cluster_dns: ["{server.pod_ip}"]}}}}
correlation: {{socket: "{sock}", rate: 50, burst: 50}}
"""
        agent = Agent(load_text(config, "test.yaml"), {}, io.StringIO(), InstanceMetadata())
        agent.start()
        assert agent.wait_first_collection(30)
        statuses = agent.runners["ebpf"].collector.statuses()
        assert statuses == {"dns": ""}, statuses
        yield {"agent": agent, "pods": made, "socket": sock}
    finally:
        if agent is not None:
            agent.stop(flush=False)
        for pod in made:
            destroy_pod(pod)
        shutil.rmtree(conf, ignore_errors=True)


def _in_pod(pod: Pod, sock: str, script: str, *args: str) -> str:
    """Python in the pod's netns and cgroup (the agent names Unix callers by cgroup), with
    this worktree's SDK and the agent's socket in its environment."""
    procs = pod.cgroup_dir() / "cgroup.procs"
    argv = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", "ip", "netns", "exec",
            pod.netns, sys.executable, "-c", script, *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "sdk" / "src"),
           "OTEL_NETRECEIVER_AGENT_SOCKET": sock}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=40, check=False,
                         env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _server(pod: Pod) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, sys.executable,
                             str(SUPPORT / "dns_server.py"), pod.pod_ip],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_die_with_parent)
    _wait_for_line(proc, "ready", time.monotonic() + 20)
    return proc


def test_a_pods_failed_lookups_are_told_back_to_it_and_to_no_other_pod(node) -> None:
    client, server, other = node["pods"]
    proc = _server(server)
    try:
        sent = client.exec(sys.executable, str(SUPPORT / "dns_client.py"), server.pod_ip,
                           *QUERIES).stdout
        assert json.loads(sent) == [0, None, None]  # the 3 s wait got the late answer
        told = json.loads(_in_pod(client, node["socket"], EXPLAIN, "drop.test", "0.5"))
    finally:
        proc.terminate()
        logged = json.loads(proc.communicate(timeout=5)[1].strip().splitlines()[-1])
    assert logged == {"late/udp": 2, "drop/udp": 2}  # the server's own count
    assert told["status"] == "ok", told
    # 4 queries, all timed out at 1 s; both late answers came (one to a closed socket)
    assert told["dns_evidence"] == (
        "this pod sent 4 DNS queries in the window: 2 answered (NOERROR 2), 4 timed out, "
        "2 answered late (after_timeout 1, no_socket 1)")
    assert told["dns_evidence"] in told["summary"]
    answer = json.loads(_in_pod(client, node["socket"], ASK, node["socket"]))["dns"]
    assert answer["by_resolver_class"]["cluster_dns"]["queries"] == 4
    assert set(answer["by_resolver_class"]) == {"cluster_dns"}
    # pod C asks too: its own (none), nothing of A's
    theirs = json.loads(_in_pod(other, node["socket"], ASK, node["socket"]))
    assert theirs["caller"]["k8s.pod.uid"] == other.uid
    assert theirs["dns"]["status"] == "ok" and theirs["dns"]["queries"] == 0
    assert theirs["dns"]["events"] == []
    assert client.uid not in json.dumps(theirs) and "late.test" not in json.dumps(theirs)

