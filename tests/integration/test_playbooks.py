"""Each node playbook, proved on the real kernel: run a scenario in a test pod without the
fault and `diagnose` must find nothing about that pod; inject the real fault (a DNS server
that stops reading, an answer after the client's timeout, a stalled accept loop, a closed
port, an unread close, an nftables drop rule, a CPU quota, a reader that stops) and
`diagnose` must name it, on that pod and no other.

One agent for the module (interval 1s, correlation socket, eBPF packetloss and tcpreset,
podnet tcpqueues, verbose labels for CoreDNS); one test pod per playbook (indices 70-79).
"""

from __future__ import annotations

import io
import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.diagnosis.command import local
from otel_netreceiver.runtime.agent import Agent
from tests.support.k8s_api import KubeApiDouble, make_pod, write_kubeconfig
from tests.support.pods import Pod, create_pod, destroy_pod, kernel_supports_test_pods

pytestmark = pytest.mark.root
NODE = "node-playbooks"
PODS = {"coredns": (70, {"k8s-app": "kube-dns"}), "resolver": (71, {}), "web": (72, {}),
        "refuser": (73, {}), "aborter": (74, {}), "lossy": (75, {}), "throttled": (76, {}),
        "reader": (77, {})}
SETTLE = 2.5  # seconds: two collection cycles at interval 1s, so the history has the effect

# A DNS server: answers each query (mode answer), answers after a delay, or never reads.
DNS_SERVER = r"""
import socket, sys, time
mode, delay = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("0.0.0.0", 53)); print("ready", flush=True)
while mode != "stall":
    query, peer = s.recvfrom(512)
    time.sleep(delay)
    s.sendto(query[:2] + b"\x81\x80" + query[4:], peer)  # QR=1, RA: an empty answer
time.sleep(3600)
"""

# A client inside the pod: queries the local server, giving up after `timeout` seconds.
DNS_CLIENT = r"""
import socket, struct, sys
timeout, count = float(sys.argv[1]), int(sys.argv[2])
answered = 0
for i in range(count):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(timeout)
    c.sendto(struct.pack(">HHHHHH", i, 0x100, 1, 0, 0, 0) + b"\x03svc\x00\x00\x01\x00\x01",
             ("127.0.0.1", 53))
    try:
        c.recv(512); answered += 1
    except socket.timeout:
        pass
    c.close()
print(answered)
"""

# A listener with backlog 1 that accepts (mode accept) or stalls (mode stall) while
# 12 clients connect.
LISTENER = r"""
import socket, sys, threading
mode = sys.argv[1]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 9200)); srv.listen(1)
held = []
if mode == "accept":
    threading.Thread(target=lambda: [held.append(srv.accept()) for _ in range(12)],
                     daemon=True).start()
clients = []
import time
for _ in range(12):
    c = socket.socket(); c.setblocking(False); c.connect_ex(("127.0.0.1", 9200))
    clients.append(c); time.sleep(0.05)  # paced: an accepting server keeps up
time.sleep(1)
for c in clients:
    c.close()
for s, _ in held:
    s.close()
time.sleep(0.2)
"""

# Resets: connections to a port nobody listens on (mode refused) or to a listener (clean).
CONNECTOR = r"""
import socket, sys
mode = sys.argv[1]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 9201)); srv.listen(8)
port = 9202 if mode == "refused" else 9201
refused = 0
for _ in range(5):
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        refused += 1
    else:
        s, _ = srv.accept(); c.close(); s.close()
print(refused)
"""

# A server that closes with the request unread (mode unread) or after reading it (clean).
CLOSER = r"""
import socket, sys, time
mode = sys.argv[1]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 9203)); srv.listen(8)
for _ in range(3):
    c = socket.create_connection(("127.0.0.1", 9203)); s, _ = srv.accept()
    c.sendall(b"GET / HTTP/1.1\r\n\r\n"); time.sleep(0.05)
    if mode != "unread":
        s.recv(100)
    s.close(); time.sleep(0.05); c.close()
"""

# A 400 kB upload through a 1500-byte loopback; the nftables rule (when present) loses 10 %.
UPLOAD = r"""
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 9204)); srv.listen(1)
got = []
def drain():
    s, _ = srv.accept()
    while (b := s.recv(65536)): got.append(len(b))
t = threading.Thread(target=drain); t.start()
c = socket.create_connection(("127.0.0.1", 9204)); c.sendall(b"x" * 400_000); c.close()
t.join(20); print(sum(got))
"""

# A reader that keeps up (mode read) or stops reading (mode stop) while 3 MB arrive.
READER = r"""
import socket, sys, threading, time
mode = sys.argv[1]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 9205)); srv.listen(1)
c = socket.create_connection(("127.0.0.1", 9205)); s, _ = srv.accept()
threading.Thread(target=lambda: c.sendall(b"x" * 3_000_000), daemon=True).start()
if mode == "read":
    threading.Thread(target=lambda: [s.recv(1 << 20) for _ in iter(int, 1)],
                     daemon=True).start()
print("ready", flush=True); time.sleep(3600)
"""



@pytest.fixture(scope="module")
def node(tmp_path_factory):
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    if subprocess.run(["nft", "--version"], capture_output=True, check=False).returncode:
        pytest.skip("nftables (nft) is not installed: run scripts/install-deps.sh")
    tmp = tmp_path_factory.mktemp("playbooks")
    api = KubeApiDouble()
    pods = {name: create_pod(index) for name, (index, _) in PODS.items()}
    for name, pod in pods.items():
        api.add(make_pod(name, "kube-system" if name == "coredns" else "shop", NODE,
                         uid=pod.uid, ip=pod.pod_ip, labels=PODS[name][1]))
    agent, sock = start_agent(tmp, api, "    verbose: true\n    labels: [k8s-app]\n")
    deadline = time.monotonic() + 20
    while agent.pods.count() < len(pods) and time.monotonic() < deadline:
        time.sleep(0.1)
    agent.wait_first_collection(60)
    ebpf = {s.name: s.reason for s in agent.probes()}.get("ebpf", "")
    yield {"agent": agent, "pods": pods, "socket": sock, "ebpf": ebpf}
    agent.stop(flush=False)
    for pod in pods.values():
        destroy_pod(pod)
    api.close()


def start_agent(tmp: Path, api: KubeApiDouble, podnet_extra: str = "") -> tuple[Agent, str]:
    """The playbook tests' agent (interval 1s, the correlation socket, eBPF packetloss and
    tcpreset, podnet with tcpqueues and tcprtt), started; ``podnet_extra``: more podnet keys."""
    sock = str(tmp / "run" / "api.sock")
    config = f"""
interval: 1s
node_name: {NODE}
kubernetes: {{kubeconfig: "{write_kubeconfig(tmp / 'kubeconfig', api.url)}"}}
collectors:
  ena: {{enabled: false}}
  ebpf: {{probes: [packetloss, tcpreset]}}
  podnet:
    probes: [netdev, snmp, netstat, snmp6, sockstat, conntrack, tcpsummary, cpu, tcpqueues,
             tcprtt]
{podnet_extra}correlation: {{socket: "{sock}"}}
"""
    agent = Agent(load_text(config, "test.yaml"), {}, io.StringIO(), InstanceMetadata())
    agent.start()
    return agent, sock


def _run(pod: Pod, script: str, *args: str) -> str:
    out = subprocess.run(["ip", "netns", "exec", pod.netns, sys.executable, "-c", script, *args],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _background(pod: Pod, script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, sys.executable, "-c", script,
                             *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def _diagnose(node, **query: str) -> dict:
    return local(node["socket"], query.get("since", "2m"), query.get("pod", ""),
                 query.get("namespace", ""))


def _verdicts(doc: dict, pod: Pod) -> list[str]:
    return [f["verdict"] for f in doc["findings"] if f.get("pod", {}).get("k8s.pod.uid") == pod.uid]


def _node_verdicts(doc: dict) -> list[str]:
    return [f["verdict"] for f in doc["findings"] if "pod" not in f]


def _unclassified(finding: dict) -> bool:
    """A packets_dropped finding made only of NOT_SPECIFIED frees: an orderly TCP close on
    this kernel frees a couple of segments through kfree_skb without a reason
    (net/ipv4/tcp_input.c), which the packetloss probe cannot tell from a drop. The rule
    table has no "reason is not" match, so the clean runs tolerate exactly this."""
    return finding["verdict"] == "packets_dropped" and all(
        e["attributes"].get("drop.reason") == "NOT_SPECIFIED" for e in finding["evidence"])


def _clean(node, name: str) -> Pod:
    """After the clean scenario: two cycles, then nothing may be said about the pod."""
    time.sleep(SETTLE)
    pod = node["pods"][name]
    found = [f for f in _diagnose(node)["findings"]
             if f.get("pod", {}).get("k8s.pod.uid") == pod.uid and not _unclassified(f)]
    assert found == [], f"clean run of {name} produced findings: {found}"
    return pod


UDP_PODS, TCP_PODS = ("coredns", "resolver"), ("web", "refuser", "aborter", "lossy", "reader")


def _faulted(node, name: str, verdict: str, not_on: tuple[str, ...] = (),
             evidence: tuple[str, ...] = ()) -> dict:
    """Poll until the fault's verdict is named on the pod (a few cycles at most), with the
    ``evidence`` signals all among its evidence (collectors run on their own clocks);
    the pods ``not_on`` (whose scenarios cannot cause it) must not have it."""
    pod, deadline = node["pods"][name], time.monotonic() + 10

    def named(doc: dict) -> bool:
        found = [f for f in doc["findings"] if f["verdict"] == verdict
                 and f.get("pod", {}).get("k8s.pod.uid") == pod.uid]
        return bool(found) and set(evidence) <= {e["signal"] for e in found[0]["evidence"]}

    while not named(doc := _diagnose(node)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert named(doc), [f for f in doc["findings"] if f.get("pod", {}).get("k8s.pod.uid")
                        == pod.uid]
    assert not [n for n in not_on if verdict in _verdicts(doc, node["pods"][n])]
    return doc


def _finding(doc: dict, pod: Pod, verdict: str) -> dict:
    return next(f for f in doc["findings"] if f["verdict"] == verdict
                and f.get("pod", {}).get("k8s.pod.uid") == pod.uid)


def test_a_coredns_pod_that_stops_reading_is_named_and_the_node_says_coredns(node):
    pod = node["pods"]["coredns"]
    server = _background(pod, DNS_SERVER, "answer", "0")
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(1)
    query = struct.pack(">HHHHHH", 7, 0x100, 1, 0, 0, 0) + b"\x03svc\x00\x00\x01\x00\x01"
    try:
        for _ in range(30):  # the clean run: each query answered before the next
            client.sendto(query, (pod.pod_ip, 53))
            assert client.recv(512)[:2] == query[:2]
    finally:
        _stop(server)
    _clean(node, "coredns")
    assert "coredns_dropping_queries" not in _node_verdicts(_diagnose(node))
    server = _background(pod, DNS_SERVER, "stall", "0")
    try:
        for _ in range(200):  # the server stopped answering: its 4 kB buffer overflows
            client.sendto(query, (pod.pod_ip, 53))
        doc = _faulted(node, "coredns", "udp_receive_buffer_overflow",
                       not_on=("resolver", *TCP_PODS))
    finally:
        _stop(server)
        client.close()
    assert "coredns_dropping_queries" in _node_verdicts(doc)
    coredns = next(f for f in doc["findings"] if f["verdict"] == "coredns_dropping_queries")
    assert {e["attributes"].get("k8s.pod.label.k8s-app") for e in coredns["evidence"]} \
        == {"kube-dns"}
    assert _finding(doc, pod, "udp_receive_buffer_overflow")["pod"]["k8s.pod.name"] == "coredns"


def test_a_dns_answer_after_the_client_timeout_is_case_1(node):
    pod = node["pods"]["resolver"]
    server = _background(pod, DNS_SERVER, "answer", "0")
    try:
        assert _run(pod, DNS_CLIENT, "1", "5") == "5"
    finally:
        _stop(server)
    _clean(node, "resolver")
    server = _background(pod, DNS_SERVER, "answer", "0.3")  # slower than the client's 0.1 s
    try:
        assert _run(pod, DNS_CLIENT, "0.1", "4") == "0"
        time.sleep(1.0 + SETTLE)  # the 4th answer lands at ~1.2 s; then two cycles
        doc = _faulted(node, "resolver", "udp_no_listener", not_on=("coredns", *TCP_PODS))
    finally:
        _stop(server)
    if "packetloss: loaded" not in node["ebpf"]:
        pytest.skip(f"case 1 needs the packetloss probe: {node['ebpf']}")
    doc = _faulted(node, "resolver", "dns_answer_after_client_timeout",
                   not_on=("coredns", *TCP_PODS), evidence=("netreceiver.packet.drop_sites",))
    case = _finding(doc, pod, "dns_answer_after_client_timeout")
    sites = [e for e in case["evidence"] if e["signal"] == "netreceiver.packet.drop_sites"]
    assert sites and sites[0]["attributes"]["drop.location"] == "__udp4_lib_rcv"
    ports = [e for e in case["evidence"] if e["signal"] == "netreceiver.udp.no_ports"]
    assert ports[0]["delta"] == 4  # every late answer, none else


def test_a_stalled_accept_loop_overflows_the_backlog_case_2(node):
    _run(node["pods"]["web"], LISTENER, "accept")
    pod = _clean(node, "web")
    _run(pod, LISTENER, "stall")
    doc = _faulted(node, "web", "accept_queue_full_while_server_stalled",
                   not_on=(*UDP_PODS, "refuser", "aborter"))
    assert "listen_overflow" in _verdicts(doc, pod)
    case = _finding(doc, pod, "accept_queue_full_while_server_stalled")
    signals = {e["signal"]: e["delta"] for e in case["evidence"]}
    assert signals["netreceiver.tcp.listen_overflows"] > 0
    assert signals["netreceiver.tcp.listen_drops"] >= signals["netreceiver.tcp.listen_overflows"]


def test_connections_to_a_closed_port_are_resets_sent(node):
    assert _run(node["pods"]["refuser"], CONNECTOR, "clean") == "0"
    pod = _clean(node, "refuser")
    # One burst: an eBPF series born with its first events counts from zero at the
    # collector's previous read (history/store.py, born_at_zero), so this burst is seen.
    assert _run(pod, CONNECTOR, "refused") == "5"
    probe = "tcpreset: loaded" in node["ebpf"]  # the probe names the kind: no socket matched
    doc = _faulted(node, "refuser", "resets_sent", not_on=UDP_PODS,
                   evidence=("netreceiver.tcp.out_rsts",
                             *(("netreceiver.pod.tcp.resets",) if probe else ())))
    evidence = _finding(doc, pod, "resets_sent")["evidence"]
    assert next(e["delta"] for e in evidence if e["signal"] == "netreceiver.tcp.out_rsts") >= 5
    if probe:
        states = {e["attributes"].get("tcp.state") for e in evidence
                  if e["signal"] == "netreceiver.pod.tcp.resets"}
        assert "no_socket" in states, evidence


def test_closing_with_unread_data_is_an_abort_on_close(node):
    _run(node["pods"]["aborter"], CLOSER, "read")
    pod = _clean(node, "aborter")
    _run(pod, CLOSER, "unread")
    doc = _faulted(node, "aborter", "connection_aborted_locally",
                   not_on=(*UDP_PODS, "refuser"))
    evidence = _finding(doc, pod, "connection_aborted_locally")["evidence"]
    assert [e["signal"] for e in evidence if e["signal"].startswith("netreceiver.tcp.abort")] \
        == ["netreceiver.tcp.abort_on_close"]


def test_an_nftables_drop_rule_is_tcp_packet_loss(node):
    pod = node["pods"]["lossy"]
    # many wire-sized segments (no 64 kB GSO super-packets), so 10 % is many losses
    pod.exec("ip", "link", "set", "lo", "mtu", "1500")
    pod.exec("ethtool", "-K", "lo", "tso", "off", "gso", "off")
    assert _run(pod, UPLOAD) == "400000"
    _clean(node, "lossy")
    # on input: a drop on output is a local send error that TCP re-sends uncounted
    rules = ("add table inet onrpb\n"
             "add chain inet onrpb in { type filter hook input priority 0; }\n"
             "add rule inet onrpb in tcp dport 9204 numgen random mod 10 == 0 drop\n")
    subprocess.run(["ip", "netns", "exec", pod.netns, "nft", "-f", "-"], input=rules, text=True,
                   check=True)
    assert _run(pod, UPLOAD) == "400000"  # TCP still delivers everything, by retransmitting
    doc = _faulted(node, "lossy", "tcp_packet_loss", not_on=(*UDP_PODS, "refuser", "aborter"))
    loss = _finding(doc, pod, "tcp_packet_loss")
    ratio = next(e for e in loss["evidence"] if e["signal"] == "netreceiver.tcp.retrans_segs")
    assert ratio["op"] == "ratio" and ratio["value"] > 0.02


def test_a_cpu_quota_is_cpu_throttling(node):
    pod = node["pods"]["throttled"]
    burn = "import time\nt=time.time()\nwhile time.time()-t<1.2: pass"
    _burn(pod, burn)
    _clean(node, "throttled")
    (pod.pod_cgroup_dir() / "cpu.cfs_period_us").write_text("10000\n")
    (pod.pod_cgroup_dir() / "cpu.cfs_quota_us").write_text("1000\n")  # 10 % of a CPU
    try:
        _burn(pod, burn)
    finally:
        (pod.pod_cgroup_dir() / "cpu.cfs_quota_us").write_text("-1\n")
    doc = _faulted(node, "throttled", "cpu_throttled", not_on=(*UDP_PODS, *TCP_PODS))
    ratio = _finding(doc, pod, "cpu_throttled")["evidence"][0]
    assert ratio["signal"] == "netreceiver.pod.cpu.throttled_periods" and ratio["value"] > 0.5


def _burn(pod: Pod, script: str) -> None:
    burner = subprocess.Popen([sys.executable, "-c", script])
    try:
        (pod.cgroup_dir() / "cgroup.procs").write_text(f"{burner.pid}\n")
        burner.wait(timeout=30)
    finally:
        burner.kill()


def test_a_reader_that_stops_leaves_bytes_queued(node):
    pod = node["pods"]["reader"]
    proc = _background(pod, READER, "read")
    try:
        _clean(node, "reader")
    finally:
        _stop(proc)
    proc = _background(pod, READER, "stop")
    try:
        doc = _faulted(node, "reader", "application_not_reading",
                       not_on=(*UDP_PODS, "refuser", "aborter"))
    finally:
        _stop(proc)
    queued = _finding(doc, pod, "application_not_reading")["evidence"][0]
    assert queued["attributes"] == {"network.io.direction": "receive"}
    assert queued["value"] > 64 * 1024


def test_diagnose_on_the_command_line_names_the_pod_and_filters(node):
    # runs after the accept-stall test above (file order): web has its finding by now
    out = subprocess.run([sys.executable, "-m", "otel_netreceiver", "diagnose", "--socket",
                          node["socket"], "--since", "2m", "--pod", "web", "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True)
    doc = json.loads(out.stdout)
    pods = {f["pod"]["k8s.pod.name"] for f in doc["findings"] if "pod" in f}
    assert pods == {"web"}
    assert "accept_queue_full_while_server_stalled" in [f["verdict"] for f in doc["findings"]]
