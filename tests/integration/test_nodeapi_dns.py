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

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.bpf.probes import EVENT_NAMES
from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.integration.test_ebpf_probes import REASON
from tests.support.dns_pods import client_and_resolver, start_dns_server
from tests.support.otlp_sink import OtlpHttpSink
from tests.support.pods import Pod
from tests.support.sdk_node import wait_for

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

# Runs in pod A: an application with its own resolver (tests/support/dns_client.py's query)
# that gives up after 1 s, reports EAI_AGAIN as a resolver library would, and keeps its
# socket open, so the answer that comes later reaches it (a late answer after the timeout).
OWN_RESOLVER = r"""
import json, socket, sys, time
from otel_netreceiver_sdk import explain
from tests.support.dns_client import query
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect((sys.argv[2], 53)); sock.settimeout(1.0)
sock.send(query(sys.argv[1], "A"))
try:
    sock.recv(512)
    raise SystemExit("answered in time")
except TimeoutError:
    failure = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
sock.settimeout(5.0); sock.recv(512)  # the late answer, then explain()
time.sleep(float(sys.argv[3]))
e = explain(failure)
print(json.dumps({"summary": e.summary, "dns_evidence": e.dns_evidence}))
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


@pytest.fixture(scope="module")
def pods() -> Iterator[list[Pod]]:
    with client_and_resolver(CLIENT, SERVER, "timeout:1 attempts:1", others=(OTHER,)) as made:
        yield made


@contextlib.contextmanager
def _agent(tmp: Path, server: Pod, extra: str = "") -> Iterator[dict]:
    """The agent with the dns probe on and the node API on a Unix socket in ``tmp``."""
    sock = str(tmp / "api.sock")
    config = f"""
interval: 1s
node_name: dns-node
collectors:
  ena: {{enabled: false}}
  ebpf: {{probes: [dns], dns: {{cluster_dns: ["{server.pod_ip}"]}}}}
{extra}correlation: {{socket: "{sock}", rate: 50, burst: 50}}
"""
    agent = Agent(load_text(config, "test.yaml"), {}, io.StringIO(), InstanceMetadata())
    agent.start()
    try:
        assert agent.wait_first_collection(30)
        statuses = agent.runners["ebpf"].collector.statuses()
        assert statuses == {"dns": ""}, statuses
        yield {"agent": agent, "socket": sock}
    finally:
        agent.stop(flush=False)


@pytest.fixture(scope="module")
def node(pods: list[Pod], tmp_path_factory) -> Iterator[dict]:
    with _agent(tmp_path_factory.mktemp("nodeapi-dns"), pods[1]) as running:
        yield {**running, "pods": pods}


def _in_pod(pod: Pod, sock: str, script: str, *args: str) -> str:
    """Python in the pod's netns and cgroup (the agent names Unix callers by cgroup), with
    this worktree's SDK and the agent's socket in its environment."""
    procs = pod.cgroup_dir() / "cgroup.procs"
    argv = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", "ip", "netns", "exec",
            pod.netns, sys.executable, "-c", script, *args]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'sdk' / 'src'}:{ROOT}",
           "OTEL_NETRECEIVER_AGENT_SOCKET": sock}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=40, check=False,
                         env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _server(pod: Pod) -> subprocess.Popen:
    return start_dns_server(pod)


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



@pytest.mark.skipif("DNS_LATE_ANSWER" not in EVENT_NAMES,
                    reason="needs the dns probe's DNS_TIMEOUT / DNS_LATE_ANSWER event types")
def test_a_late_answer_is_told_with_when_the_query_left_and_when_it_came(
        pods: list[Pod], tmp_path) -> None:
    client, server, other = pods
    sink = OtlpHttpSink()
    events = (f"  events: {{types: [DNS_TIMEOUT, DNS_LATE_ANSWER]}}\n"
              f"exporters: {{otlp: {{endpoint: \"{sink.endpoint}\"}}}}\n")
    proc = _server(server)
    try:
        with _agent(tmp_path, server, events) as node:
            # the pipeline is live once a lookup's timeout came back with the pod's own 1 s
            # (the event program starts from the default 5 s until the sweep writes it)
            ring = node["agent"].correlation.recent_dns

            def live() -> bool:
                _in_pod(client, node["socket"], EXPLAIN, "drop.test", "0.3")
                return any(e.timeout_ns == 10**9
                           for e in ring.latest(client.uid, 0, time.time_ns(), 16))

            wait_for(live, 20, "a DNS_TIMEOUT with the pod's 1 s timeout")
            # gives up after 1 s; the answer comes at 1.5 s (an event at once); explain()
            told = json.loads(_in_pod(client, node["socket"], OWN_RESOLVER, "late.test",
                                      server.pod_ip, "0.5"))
            mine = json.loads(_in_pod(client, node["socket"], ASK, node["socket"]))["dns"]
            theirs = json.loads(_in_pod(other, node["socket"], ASK, node["socket"]))["dns"]
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
        sink.close()
    assert re.fullmatch(
        r"the query for late\.test left the pod at \d\d:\d\d:\d\d\.\d{3} UTC, the resolver "
        r"pod \(10\.251\.82\.2:53\) answered at T\+\d+\.\d s, after your 1 s timeout",
        told["dns_evidence"]), told
    assert told["dns_evidence"] in told["summary"]
    (late,) = [e for e in mine["events"] if e["type"] == "late_answer"]
    assert late["query_name"] == "late.test" and late["client"]["address"] == client.pod_ip
    assert late["answered_unix_nano"] - late["sent_unix_nano"] >= 1_500_000_000  # the delay
    assert late["timeout_seconds"] == 1.0
    assert late["late_reason"] == "after_timeout"
    assert theirs["events"] == []  # pod C: nothing of A's
