"""Issue 5 end to end: an application using the SDK, inside a test pod, asks the real agent.

Everything is real except the ENA NIC (this machine has none: the ENA collector replays the
AWS documentation's sample with link-local drops growing, tests/support/ena_replay.py):
pods are network namespaces with veths and kubelet-named cgroups, named by the Kubernetes
API double through a kubeconfig; the app (tests/support/sdk_app.py) runs in the pod's
namespace and cgroup and finds the agent only through the SDK's environment variables;
the agent is the threaded Agent with its node API on the pod's node-side address (TCP,
callers named by pod IP) and on a Unix socket (callers named by SO_PEERCRED → cgroup);
DNS, UDP and TCP peers run in a second pod. Each finding's evidence is compared with what
the agent exported on /metrics and with the kernel's own counters (nstat in the pod).
"""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.ena_replay import aws_sample, write_growing_recording
from tests.support.k8s_api import KubeApiDouble, make_pod, write_kubeconfig
from tests.support.pods import (
    Pod,
    create_pod,
    destroy_pod,
    kernel_supports_test_pods,
    nstat,
)
from tests.support.sdk_node import (
    NODE,
    AppProcess,
    exported,
    link_pods,
    resolv_conf,
    scrape,
    scrape_when,
    start_peer,
    wait_for,
)

pytestmark = [pytest.mark.root, pytest.mark.e2e]

REASON = kernel_supports_test_pods()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SERVICE = "orders.shop.svc.cluster.local"
LINKLOCAL = "linklocal_allowance_exceeded"
LINKLOCAL_STEP = 240  # link-local packets the ENI shaped between two reads
ENA = "aws.ena.allowance.exceeded"


@dataclass
class Node:
    api: KubeApiDouble
    app: Pod  # where the application runs
    peer: Pod  # the DNS server, the flooding sender, the resetting server
    kubeconfig: Path
    tmp: Path

    @property
    def socket(self) -> str:
        return str(self.tmp / "api.sock")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    api = KubeApiDouble()
    pods = [create_pod(120, "cgroupfs"), create_pod(121, "systemd")]
    try:
        link_pods(pods)
        for pod, name in zip(pods, ("app", "peer"), strict=True):
            api.add(make_pod(f"{name}-{pod.index}", "shop", NODE, uid=pod.uid, ip=pod.pod_ip))
        yield Node(api, pods[0], pods[1], write_kubeconfig(tmp_path / "kubeconfig", api.url),
                   tmp_path)
    finally:
        for pod in pods:
            destroy_pod(pod)
        api.close()


def start_agent(node: Node, *, interval: str = "1s", ena: str = "{enabled: false}",
                ebpf: str = "{enabled: false}") -> Agent:
    config = f"""
interval: {interval}
jitter: 0
node_name: {NODE}
kubernetes: {{kubeconfig: "{node.kubeconfig}"}}
collectors:
  ena: {ena}
  ebpf: {ebpf}
  netdev: {{enabled: false}}
  nodenet: {{enabled: false}}
  podnet: {{probes: [snmp, netstat]}}
correlation:
  host: {node.app.host_ip}
  port: 0
  socket: {node.socket}
exporters:
  console: {{enabled: false}}
  prometheus: {{enabled: true, port: 0}}
"""
    agent = Agent(load_text(config, "sdk-e2e.yaml"), {"HOME": "/nonexistent"},
                  stream=io.StringIO(), metadata=InstanceMetadata())
    agent.start()
    try:
        assert agent.correlation is not None and agent.correlation.api is not None, \
            agent.correlation.status if agent.correlation else "correlation off"
        wait_for(lambda: agent.pods is not None and agent.pods.count() >= 2, 15,
                 "the agent's pod watch lists both pods")
        for runner in agent.runners.values():
            assert runner.stats.first_done.wait(30), f"{runner.name}: no first cycle"
    except BaseException:
        agent.stop(flush=False)
        raise
    return agent


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.stop(flush=False)


@pytest.fixture
def apps() -> Iterator[list[AppProcess]]:
    started: list[AppProcess] = []
    yield started
    for app in started:
        app.close()


def _evidence(finding: dict, signal_name: str, **attributes: str) -> list[dict]:
    return [e for e in finding["evidence"] if e["signal"] == signal_name
            and all(dict(e["attributes"]).get(k) == v for k, v in attributes.items())]


def _first(explanation: dict) -> dict:
    return explanation["agent"]["findings"][0]


# --- (1) DNS ----------------------------------------------------------------------------

def _dns_app(node: Node, apps: list[AppProcess]) -> tuple[AppProcess, object]:
    app = AppProcess(node.app, {"OTEL_NETRECEIVER_AGENT_SOCKET": node.socket})
    apps.append(app)
    server = start_peer(node.peer, "dns", node.peer.pod_ip)
    return app, server


def _stop_dns(server) -> dict[str, int]:  # type: ignore[no-untyped-def]
    server.terminate()
    _, err = server.communicate(timeout=10)
    return json.loads(err.strip().splitlines()[-1])


def _recording(node: Node, step: int) -> Path:
    path = node.tmp / "ena.json"
    write_growing_recording(path, grow=LINKLOCAL, start_frame=1, step=step, frames=50)
    return path


def test_dns_answering_and_no_eni_drops_is_no_finding(node, agents, apps) -> None:
    # The ENA collector reads at start and when a question refreshes it (interval 60 s):
    # the replayed counters stay at the AWS sample's values, which are not zero.
    agent = start_agent(node, interval="60s", ena=f"{{replay: {_recording(node, 0)}}}")
    agents.append(agent)
    with resolv_conf(node.app, f"nameserver {node.peer.pod_ip}\noptions timeout:1 attempts:1\n"):
        app, server = _dns_app(node, apps)
        for _ in range(3):
            answered = app.call("lookup", name=SERVICE)
            assert answered["ok"] and answered["addresses"] == ["10.1.2.3"], answered
        assert agent.correlation.outcomes.get("ok", 0) == 0  # success: the SDK asked nothing
        # An explicit question about this pod's DNS (no error type: not the lookup below,
        # which the SDK's 5 s answer cache would otherwise answer from this one).
        asked = app.call("ask", signal="dns", error_type="", transport="udp", phase="lookup")
        assert asked["status"] == "ok", asked
        assert asked["answer"]["verdict"] == "nothing_abnormal"
        assert asked["answer"]["findings"] == []
        assert asked["answer"]["caller_kind"] == "pod"  # named by SO_PEERCRED → cgroup
        server.send_signal(signal.SIGUSR1)  # the DNS server stops answering
        lost = app.call("lookup", name=SERVICE)
        counts = _stop_dns(server)
    e = lost["explanation"]
    assert not lost["ok"] and e["classification"]["error_type"] == "timeout"
    assert e["packets_lost"] is True and 0.9 <= lost["seconds"] < 1.6  # timeout:1, one try
    assert e["agent_status"] == "ok" and e["agent"]["verdict"] == "nothing_abnormal"
    assert e["verdict"] == "dns_packets_lost"  # the node saw nothing: the SDK's own reading
    assert counts["answered"] >= 3 and counts["ignored"] >= 1  # the queries did arrive


def test_dns_silence_with_eni_linklocal_drops_is_eni_dns_throttling(node, agents,
                                                                   apps) -> None:
    agent = start_agent(node, interval="60s",
                        ena=f"{{replay: {_recording(node, LINKLOCAL_STEP)}}}")
    agents.append(agent)
    port = agent.pull.port
    with resolv_conf(node.app, f"nameserver {node.peer.pod_ip}\noptions timeout:1 attempts:1\n"):
        app, server = _dns_app(node, apps)
        assert app.call("lookup", name=SERVICE)["ok"]
        before = exported(scrape(port), ENA, **{"aws.ena.allowance": "linklocal"})
        server.send_signal(signal.SIGUSR1)
        failed = app.call("lookup", name=SERVICE)
        after = exported(scrape(port), ENA, **{"aws.ena.allowance": "linklocal"})
        counts = _stop_dns(server)
    assert before == aws_sample()[LINKLOCAL]
    e = failed["explanation"]
    assert e["packets_lost"] is True and e["agent_status"] == "ok", e
    assert e["verdict"] == "dns_throttled_at_eni"
    finding = _first(e)
    assert finding["rule"] == "dns.eni_linklocal"
    assert "NodeLocal DNSCache" in finding["advice"] and "CoreDNS replicas" in finding["advice"]
    (evidence,) = _evidence(finding, ENA, **{"aws.ena.allowance": "linklocal",
                                             "network.interface.name": "eth0"})
    assert evidence["delta"] == after - before == LINKLOCAL_STEP  # what the agent exported
    assert "no answer came" in e["summary"] and "dns_throttled_at_eni" in e["summary"]
    (event,) = failed["events"]  # on the application's active span
    assert event["netreceiver.verdict"] == "dns_throttled_at_eni"
    assert event["dns.packets_lost"] is True and event["k8s.pod.uid"] == node.app.uid
    assert counts["ignored"] >= 1


# --- (2) UDP receive buffer ------------------------------------------------------------

def test_udp_receive_buffer_overflow_matches_the_pods_rcvbuf_errors(node, agents,
                                                                   apps) -> None:
    agent = start_agent(node, ebpf="{probes: [packetloss]}")
    agents.append(agent)
    endpoint = f"http://{node.app.host_ip}:{agent.correlation.api.tcp_port}"
    app = AppProcess(node.app, {"OTEL_NETRECEIVER_AGENT_ENDPOINT": endpoint})
    apps.append(app)
    assert app.call("udp_bind", host=node.app.pod_ip, port=5140, rcvbuf=4096)["ok"]
    podnet = agent.runners["podnet"].stats.cycles
    wait_for(lambda: agent.runners["podnet"].stats.cycles >= podnet + 1, 10,
             "the agent sees the pod's counters before the flood")
    before = nstat(node.app)
    flood = start_peer(node.peer, "flood", node.app.pod_ip, "5140", "3000")
    assert flood.wait(timeout=30) == 0
    drained = app.call("udp_drain", seconds=0.3)
    kernel = nstat(node.app)["UdpRcvbufErrors"] - before.get("UdpRcvbufErrors", 0)
    uid = {"k8s.pod.uid": node.app.uid}
    # The store exports at the collection interval (the answer read a fresher sample).
    text = scrape_when(agent.pull.port, "netreceiver.udp.rcvbuf_errors", **uid)
    e = drained["explanation"]
    assert not drained["ok"] and e["classification"]["error_type"] == "timeout"
    assert e["classification"]["observation"]["transport"] == "udp"
    assert e["agent_status"] == "ok", e
    assert e["agent"]["caller_kind"] == "pod"  # named by its pod IP over TCP
    assert e["verdict"] == "udp_receive_buffer_overflow"
    finding = _first(e)
    (evidence,) = _evidence(finding, "netreceiver.udp.rcvbuf_errors")
    assert kernel > 0 and drained["received"] > 0
    assert evidence["delta"] == kernel == exported(text, "netreceiver.udp.rcvbuf_errors", **uid)
    drops = _evidence(finding, "netreceiver.pod.packet.drops", **{"drop.reason":
                                                                  "SOCKET_RCVBUFF"})
    assert [d["delta"] for d in drops] == [kernel]  # the eBPF drop reason, same count


# --- (3) TCP reset -----------------------------------------------------------------------

def test_reset_by_peer_carries_the_kernels_reset_reason(node, agents, apps) -> None:
    agent = start_agent(node, ebpf="{probes: [tcpreset]}")
    agents.append(agent)
    app = AppProcess(node.app, {"OTEL_NETRECEIVER_AGENT_SOCKET": node.socket})
    apps.append(app)
    server = start_peer(node.peer, "reset", node.peer.pod_ip, "8080")
    peer_before, app_before = nstat(node.peer), nstat(node.app)
    reset = app.call("tcp_request", host=node.peer.pod_ip, port=8080)
    server.wait(timeout=10)
    peer_after, app_after = nstat(node.peer), nstat(node.app)
    text = scrape(agent.pull.port)
    e = reset["explanation"]
    assert not reset["ok"] and e["classification"]["error_type"] == "ECONNRESET", reset
    assert e["agent_status"] == "ok", e
    assert e["verdict"] == "reset_by_peer"
    finding = _first(e)
    resets = "netreceiver.pod.tcp.resets"
    (received,) = _evidence(finding, resets, **{"tcp.state": "established"})
    assert received["scope"] == "pod"
    assert received["delta"] == 1 == exported(
        text, resets, **{"k8s.pod.uid": node.app.uid, "tcp.reset.direction": "received"})
    # The peer's kernel: one RST, from tcp_disconnect (zero linger: TCPAbortOnData).
    assert peer_after["TcpOutRsts"] - peer_before.get("TcpOutRsts", 0) == 1
    assert peer_after["TcpExtTCPAbortOnData"] - peer_before.get("TcpExtTCPAbortOnData", 0) == 1
    peer_sent = exported(text, resets, **{"k8s.pod.uid": node.peer.uid,
                                          "tcp.reset.direction": "sent",
                                          "tcp.reset.reason": "tcp_state"})
    assert peer_sent == 1
    sent = _evidence(finding, resets, **{"tcp.reset.reason": "tcp_state"})
    assert sent and all(s["scope"] == "all" and "k8s.pod.uid" not in s["attributes"]
                        for s in sent)  # node-wide, no other pod's identity
    assert sum(s["delta"] for s in sent) >= peer_sent  # other pods of the node may add
    (estab,) = _evidence(finding, "netreceiver.tcp.estab_resets")
    assert estab["delta"] == app_after["TcpEstabResets"] - app_before.get("TcpEstabResets", 0)
