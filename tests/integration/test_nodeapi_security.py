"""The node API over the real network path: test pods (netns, veth, kubelet cgroups) ask it.

Pod A and pod B are named through the Kubernetes API double (their IPs from the pod
watch); pod C exists on the node but not in the API (an unknown caller). B overflows a
UDP receive buffer; A must never see it, B must, and the host gets node data only.
"""

from __future__ import annotations

import http.client
import io
import json
import subprocess
import sys
import time

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.backends import free_port
from tests.support.k8s_api import KubeApiDouble, make_pod, write_kubeconfig
from tests.support.pods import Pod, create_pod, destroy_pod, kernel_supports_test_pods, nstat

pytestmark = pytest.mark.root
NODE = "node-under-test"
ASK = {"signal": "dns", "error_type": "timeout", "window_seconds": 30}

# Runs inside a pod: one request to the agent, prints "status body" (TCP or Unix socket).
CLIENT = r"""
import http.client, json, socket, sys
target, method, path, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(target)
conn = Unix("agent", timeout=5) if target.startswith("/") else \
    http.client.HTTPConnection(target.split(":")[0], int(target.split(":")[1]), timeout=5)
conn.request(method, path, body=body or None, headers={"Content-Type": "application/json"})
resp = conn.getresponse(); print(resp.status, resp.read().decode())
"""

# Runs inside pod B: a receiver that never reads, a sender that fills its buffer.
OVERFLOW = r"""
import socket
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); rx.bind(("127.0.0.1", 0))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(300): tx.sendto(b"x" * 1000, rx.getsockname())
"""



@pytest.fixture(scope="module")
def node(tmp_path_factory):
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("nodeapi")
    api = KubeApiDouble()
    pods = [create_pod(61, "cgroupfs"), create_pod(62, "systemd"), create_pod(63, "cgroupfs")]
    for pod, name in zip(pods[:2], ("web-a", "web-b"), strict=True):
        api.add(make_pod(name, "shop", NODE, uid=pod.uid, ip=pod.pod_ip))
    port, sock = free_port(), str(tmp / "run" / "api.sock")
    config = f"""
interval: 1s
node_name: {NODE}
kubernetes: {{kubeconfig: "{write_kubeconfig(tmp / 'kubeconfig', api.url)}"}}
collectors: {{ebpf: {{enabled: false}}, ena: {{enabled: false}}}}
correlation: {{host: "0.0.0.0", port: {port}, socket: "{sock}", rate: 1, burst: 4}}
"""
    agent = Agent(load_text(config, "test.yaml"), {}, io.StringIO(), InstanceMetadata())
    agent.start()
    deadline = time.monotonic() + 20
    while agent.pods.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    agent.wait_first_collection(20)
    yield {"agent": agent, "pods": pods, "port": port, "socket": sock}
    agent.stop(flush=False)
    for pod in pods:
        destroy_pod(pod)
    api.close()


def _in_pod(pod: Pod, script: str, *args: str, cgroup: bool = False) -> str:
    """Run python in the pod's netns (and, for Unix-socket callers, in its cgroup)."""
    argv = ["ip", "netns", "exec", pod.netns, sys.executable, "-c", script, *args]
    if cgroup:  # join the cgroup first: `ip netns exec` mounts a sysfs without cgroups
        procs = pod.cgroup_dir() / "cgroup.procs"
        argv = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _ask(pod: Pod, target: str, body: dict | str = ASK, method: str = "POST",
         path: str = "/v1/correlate", cgroup: bool = False) -> tuple[int, dict]:
    raw = body if isinstance(body, str) else json.dumps(body)
    status, _, text = _in_pod(pod, CLIENT, target, method, path, raw, cgroup=cgroup).partition(" ")
    return int(status), json.loads(text) if text else {}


def _tcp(node, pod: Pod) -> str:
    return f"{pod.host_ip}:{node['port']}"


def test_a_pod_sees_its_own_overflow_and_no_other_pod_sees_it(node):
    a, b, _ = node["pods"]
    before = nstat(b).get("UdpRcvbufErrors", 0)
    time.sleep(1.5)  # a 1 s collection has B's baseline in the history
    _in_pod(b, OVERFLOW)
    overflowed = nstat(b)["UdpRcvbufErrors"] - before
    assert overflowed > 0
    status, mine = _ask(b, _tcp(node, b))
    assert status == 200 and mine["caller"]["k8s.pod.name"] == "web-b"
    assert mine["verdict"] == "udp_receive_buffer_overflow"
    evidence = mine["findings"][0]["evidence"][0]
    assert evidence["signal"] == "netreceiver.udp.rcvbuf_errors"
    assert evidence["delta"] == overflowed  # what the pod's own kernel counted
    for target, cgroup in ((_tcp(node, a), False), (node["socket"], True)):
        status, theirs = _ask(a, target, cgroup=cgroup)
        assert status == 200 and theirs["caller"]["k8s.pod.uid"] == a.uid
        assert theirs["verdict"] == "nothing_abnormal"
        # a dns question: the pod's own DNS evidence, and this agent says it has none
        assert theirs["dns"]["status"] == "probe_off"
        assert theirs["dns"]["detail"].startswith("dns probe not enabled")
        text = json.dumps(theirs)
        assert b.uid not in text and "web-b" not in text and b.pod_ip not in text


def test_the_unix_socket_names_the_pod_by_its_cgroup(node):
    _, b, c = node["pods"]
    status, doc = _ask(b, node["socket"], cgroup=True)
    assert status == 200 and doc["caller"]["k8s.pod.uid"] == b.uid
    # C is in no API record, but its cgroup names it: the socket trusts the kernel
    status, doc = _ask(c, node["socket"], cgroup=True)
    assert status == 200 and doc["caller"] == {"kind": "pod", "k8s.pod.uid": c.uid}


def test_unknown_tcp_callers_are_refused_and_host_callers_get_node_data_only(node):
    _, b, c = node["pods"]
    status, doc = _ask(c, _tcp(node, c))
    assert status == 403 and c.pod_ip in doc["error"]
    # the host (this test process: no pod cgroup, the node's namespace) over both transports
    conn = http.client.HTTPConnection("127.0.0.1", node["port"], timeout=5)
    conn.request("POST", "/v1/correlate", body=b'{"signal": "dns"}')
    response = conn.getresponse()
    reply = response.read().decode()
    conn.close()
    assert response.status == 200 and json.loads(reply)["caller"] == {"kind": "host"}
    assert json.loads(reply)["dns"]["status"] == "no_pod"  # no pod's DNS evidence
    assert b.uid not in reply


def test_read_only_size_limited_and_rate_limited_per_caller(node):
    a, b, _ = node["pods"]
    assert _ask(a, _tcp(node, a), method="DELETE")[0] == 405
    assert _ask(a, _tcp(node, a), body="x" * 20000)[0] == 413
    assert _ask(a, _tcp(node, a), body="{not json")[0] == 400
    time.sleep(4)  # refill: rate 1/s, burst 4
    codes = [_ask(a, _tcp(node, a))[0] for _ in range(6)]
    assert codes.count(429) >= 1 and codes[0] == 200
    assert _ask(b, _tcp(node, b))[0] == 200  # B has its own bucket
    outcomes = node["agent"].correlation.outcomes
    assert outcomes["rate_limited"] >= 1 and outcomes["refused"] >= 1


def test_the_nodes_diagnosis_is_for_root_on_the_node_only(node):
    a, b, _ = node["pods"]
    # test_a_pod_sees_its_own_overflow... overflowed B's buffer in this module's agent
    out = subprocess.run([sys.executable, "-m", "otel_netreceiver", "diagnose", "--socket",
                          node["socket"], "--since", "2m", "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True)
    doc = json.loads(out.stdout)
    mine = [f for f in doc["findings"] if f.get("pod", {}).get("k8s.pod.uid") == b.uid]
    assert [f["verdict"] for f in mine] == ["udp_receive_buffer_overflow"]
    assert mine[0]["pod"]["k8s.pod.name"] == "web-b"
    # A's own TCP requests to the agent (the rate-limit test closes early) may give A TCP
    # findings of its own; B's UDP overflow must never be attributed to A
    assert not [f for f in doc["findings"] if f.get("pod", {}).get("k8s.pod.uid") == a.uid
                and f["verdict"].startswith("udp")]
    text = subprocess.run([sys.executable, "-m", "otel_netreceiver", "diagnose", "--socket",
                           node["socket"], "--pod", "web-b"], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    assert "udp_receive_buffer_overflow" in text and "pod shop/web-b" in text
    # a pod may not ask for the node's view, over either transport
    time.sleep(2.5)  # A's bucket was emptied by the rate-limit test (1/s, burst 4)
    assert _ask(a, node["socket"], method="GET", path="/v1/diagnose", body="",
                cgroup=True)[0] == 403
    assert _ask(a, _tcp(node, a), method="GET", path="/v1/diagnose", body="")[0] == 403


def test_the_nodes_top_is_for_root_on_the_node_only(node):
    a, b, _ = node["pods"]
    out = subprocess.run([sys.executable, "-m", "otel_netreceiver", "top", "--socket",
                          node["socket"], "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True)
    doc = json.loads(out.stdout)
    named = {r["key"]: r["name"] for r in doc["rows"] if r["kind"] == "pod"}
    assert named.get(a.uid) == "web-a" and named.get(b.uid) == "web-b"
    # every pod's rates are the node's business only: refused to a pod on either transport
    time.sleep(2.5)  # A's bucket (1/s, burst 4) after the tests above
    refused = _ask(a, node["socket"], method="GET", path="/v1/top", body="", cgroup=True)
    assert refused[0] == 403 and "top" in refused[1]["error"]
    assert _ask(a, _tcp(node, a), method="GET", path="/v1/top", body="")[0] == 403
