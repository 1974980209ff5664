"""Traffic by peer end to end: the agent with the peers probe, its zone sources and OTLP export.

The agent runs in-process with its real threads, the peers probe loaded on this kernel and
every zone source live against a double: IMDS (this node in us-west-2b, its VPC), EC2
DescribeSubnets (recorded pages with two subnets rewritten to the test pods' subnets:
10.251.153.0/24 in us-west-2a, 10.251.154.0/24 in us-west-2c) and the Kubernetes API (the
pod watch of this node: the client S and the server P1; the Node watch: this node and a
node in us-west-2a whose InternalIP is P2's address). S sends known datagrams to P1 (a pod
of this node: same_node), P2 (other_zone us-west-2a, a node's address) and P3 (other_zone
us-west-2c, from DescribeSubnets alone). The OTLP receiver gets the per-pod metrics by
class and zone and the peer.top log records naming each peer: the pod, the node, the
address.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import load_metadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.config.schema import ImdsConfig
from otel_netreceiver.runtime.agent import Agent
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.ec2_double import PAGES, Ec2Double, static_aws_credentials
from tests.support.imds_double import ImdsDouble
from tests.support.k8s_api import KubeApiDouble, make_node, make_pod, write_kubeconfig
from tests.support.otlp_sink import OtlpHttpSink, log_records
from tests.support.pods import Pod, create_pod, destroy_pod
from tests.support.sdk_node import link_pods
from tests.support.soak import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.root]
if REASON:
    pytest.skip(REASON, allow_module_level=True)
pytest.importorskip("botocore", reason="botocore (the amp extra) is not installed")

SUPPORT = Path(__file__).resolve().parents[1] / "support"
RECORDING = SUPPORT.parent / "data" / "imds" / "aws-doc-example.json"
NODE = "ip-10-158-112-84.us-west-2.compute.internal"
S, P1, P2, P3 = 151, 152, 153, 154
PORT = 9000
IP_UDP = 28
# (pod, datagrams, payload) S sends to each
PLAN = {P1: (4, 700), P2: (3, 300), P3: (5, 200)}


@pytest.fixture
def pods() -> Iterator[dict[int, Pod]]:
    made: dict[int, Pod] = {}
    try:
        for index in (S, P1, P2, P3):
            made[index] = create_pod(index, "systemd")
        link_pods(list(made.values()))
        yield made
    finally:
        for pod in made.values():
            destroy_pod(pod)


def _pages(tmp_path: Path) -> tuple[Path, ...]:
    """The recorded DescribeSubnets pages, two subnets moved to the test pods' addresses."""
    out = []
    for page in PAGES:
        text = page.read_text().replace("10.158.128.0/19", "10.251.153.0/24").replace(
            "10.158.160.0/19", "10.251.154.0/24")
        out.append(tmp_path / page.name)
        out[-1].write_text(text)
    return tuple(out)


@pytest.fixture
def doubles(monkeypatch, tmp_path, pods):  # type: ignore[no-untyped-def]
    static_aws_credentials(monkeypatch, tmp_path, "AKIDPEERS", imds=True)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    imds, ec2, api, sink = ImdsDouble(RECORDING), Ec2Double(_pages(tmp_path)), KubeApiDouble(), \
        OtlpHttpSink()
    api.put_node(make_node(NODE, "us-west-2b", ("10.158.112.84",)))
    api.put_node(make_node("far-node", "us-west-2a", (pods[P2].pod_ip,)))
    api.add(make_pod("client", "shop", NODE, uid=pods[S].uid, ip=pods[S].pod_ip))
    api.add(make_pod("server-1", "shop", NODE, uid=pods[P1].uid, ip=pods[P1].pod_ip))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    yield imds, ec2, kubeconfig, sink
    for double in (imds, ec2, api, sink):
        double.close()


def _config(imds: ImdsDouble, ec2: Ec2Double, kubeconfig: Path, sink: OtlpHttpSink) -> str:
    return f"""
interval: 1s
jitter: 0
node_name: {NODE}
imds: {{enabled: true, endpoint: "{imds.endpoint}"}}
kubernetes: {{kubeconfig: "{kubeconfig}"}}
peers: {{ec2_endpoint: "{ec2.url}"}}
collectors:
  ena: {{enabled: false}}
  netdev: {{enabled: false}}
  nodenet: {{enabled: false}}
  podnet: {{enabled: false}}
  events: {{enabled: false}}
  ebpf: {{probes: [peers]}}
correlation: {{enabled: false}}
exporters: {{otlp: {{endpoint: "{sink.endpoint}", timeout: 2s}}, console: {{enabled: false}}}}
"""


def _send(pods: dict[int, Pod]) -> None:
    sinks = []
    for index, (count, _) in PLAN.items():
        argv = ["ip", "netns", "exec", pods[index].netns, sys.executable,
                str(SUPPORT / "udp_counts.py"), "sink", pods[index].pod_ip, str(PORT), str(count)]
        sinks.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
        _wait_for_line(sinks[-1], "ready", time.monotonic() + 20)
    pods[S].exec(sys.executable, str(SUPPORT / "udp_counts.py"), "send",
                 *[f"{pods[i].pod_ip}:{PORT}:{size}:{n}" for i, (n, size) in PLAN.items()])
    got = [int(proc.communicate(timeout=20)[0].split()[-1]) for proc in sinks]
    assert got == [n for n, _ in PLAN.values()]


def _peer_bytes(values: dict, uid: str) -> dict[tuple[str, str, str], float]:
    out = {}
    for (name, attributes), value in values.items():
        a = dict(attributes)
        if name == "netreceiver.pod.peer.bytes" and a.get("k8s.pod.uid") == uid:
            out[(a["network.io.direction"], a["peer.class"], a.get("peer.zone", ""))] = value
    return out


def _records(sink: OtlpHttpSink) -> list[dict]:
    out = []
    for request in list(sink.log_requests):
        for record in log_records(request):
            a = {kv.key: (kv.value.string_value or kv.value.int_value)
                 for kv in record.attributes}
            if a.get("event.name") == "peer.top":
                out.append(a)
    return out


def _top_of(sink: OtlpHttpSink, uid: str) -> dict[tuple[str, str, str, str], list[int]]:
    """(peer name, kind, class, zone) → [bytes, packets] over a pod's transmit records."""
    out: dict[tuple[str, str, str, str], list[int]] = {}
    for r in _records(sink):
        if r.get("k8s.pod.uid") == uid and r["network.io.direction"] == "transmit":
            total = out.setdefault((r["peer.name"], r["peer.kind"], r["peer.class"],
                                    r.get("peer.zone", "")), [0, 0])
            total[0] += r["peer.bytes"]
            total[1] += r["peer.packets"]
    return out


def test_cross_zone_bytes_and_top_peers_reach_the_otlp_receiver(doubles, pods) -> None:
    imds, ec2, kubeconfig, sink = doubles
    metadata, _ = load_metadata(ImdsConfig(enabled=True, endpoint=imds.endpoint), "/nonexistent")
    agent = Agent(load_text(_config(imds, ec2, kubeconfig, sink), "e2e.yaml"), {},
                  stream=io.StringIO(), metadata=metadata, listen=False)
    agent.start()
    try:
        # every source answered and the table is in the kernel before anything is sent
        wait_until(lambda: agent.peer_zones.status().active
                   and "2 nodes" in agent.peer_zones.status().reason
                   and "peer table" in agent.runners["ebpf"].collector.probe().reason,
                   timeout=20)
        wait_until(lambda: agent.pods is not None and agent.pods.by_ip(pods[P1].pod_ip))
        first = agent.runners["ebpf"].stats.cycles
        wait_until(lambda: agent.runners["ebpf"].stats.cycles >= first + 2)  # table synced
        _send(pods)
        sent = {key: n * (size + IP_UDP) for key, (n, size) in
                zip((("transmit", "same_node", "us-west-2b"),
                     ("transmit", "other_zone", "us-west-2a"),
                     ("transmit", "other_zone", "us-west-2c")), PLAN.values(), strict=True)}
        assert sink.wait_for(lambda v: _peer_bytes(v, pods[S].uid) == sent, timeout=20), \
            _peer_bytes(sink.latest_values(), pods[S].uid)
        expected = {("shop/server-1", "pod", "same_node", "us-west-2b"): [4 * 728, 4],
                    (pods[P3].pod_ip, "address", "other_zone", "us-west-2c"): [5 * 228, 5],
                    ("far-node", "node", "other_zone", "us-west-2a"): [3 * 328, 3]}
        # summed over records: a send that straddles two intervals is in two records each
        wait_until(lambda: _top_of(sink, pods[S].uid) == expected, timeout=20)
        theirs = [r for r in _records(sink) if r.get("k8s.pod.uid") == pods[P1].uid]
        assert {(r["peer.name"], r["network.io.direction"], r["k8s.pod.name"]) for r in theirs
                } == {("shop/client", "receive", "server-1")}
        assert sink.wait_for(lambda v: v.get(("netreceiver.events",
                                              (("event.name", "peer.top"),)), 0) >= 4)
        assert not any(name == "netreceiver.events.dropped" for name, _ in
                       sink.latest_values())
        assert ec2.requests and ec2.requests[0]["Action"] == "DescribeSubnets"
    finally:
        agent.stop()
