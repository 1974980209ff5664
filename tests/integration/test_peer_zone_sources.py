"""Zone sources end to end: IMDS, EC2 DescribeSubnets, the Node and Service watches (doubles).

`otel-netreceiver probes` asks each source once and says which answered, what the
table knows, and what is missing; the table classes peers by all of them.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
from pathlib import Path

import pytest

from otel_netreceiver.cli import main
from otel_netreceiver.cloud.imds import load_metadata
from otel_netreceiver.config.loader import load_file, load_text
from otel_netreceiver.config.schema import ImdsConfig, PeersConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.peers.classes import PeerClass, classify
from otel_netreceiver.peers.sources import PeerZones
from otel_netreceiver.runtime.agent import Agent
from otel_netreceiver.runtime.reload import ConfigReloader
from tests.support.ec2_double import Ec2Double, static_aws_credentials
from tests.support.imds_double import ImdsDouble
from tests.support.k8s_api import KubeApiDouble, make_node, make_service, write_kubeconfig
from tests.support.soak import wait_until

pytest.importorskip("botocore", reason="botocore (the amp extra) is not installed")

RECORDING = Path(__file__).parent.parent / "data" / "imds" / "aws-doc-example.json"
NODE = "ip-10-158-112-84.us-west-2.compute.internal"


@pytest.fixture
def doubles(monkeypatch, tmp_path):
    static_aws_credentials(monkeypatch, tmp_path, "AKIDZONES", imds=True)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    imds, ec2, api = ImdsDouble(RECORDING), Ec2Double(), KubeApiDouble()
    api.put_node(make_node(NODE, "us-west-2b", ("10.158.112.84",)))
    api.put_node(make_node("ip-10-158-130-7", "us-west-2a", ("10.158.130.7",)))
    api.put_node(make_node("onprem-gw", "us-west-2c", ("192.168.7.1",)))
    api.put_service(make_service("kube-dns", "kube-system", ("10.100.0.10",)))
    api.put_service(make_service("db", "shop"))  # headless: no ClusterIP
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    yield imds, ec2, api, kubeconfig
    for double in (imds, ec2, api):
        double.close()


def _config(imds: ImdsDouble, ec2: Ec2Double, kubeconfig: Path, extra: str = "") -> str:
    return f"""
node_name: {NODE}
imds: {{enabled: true, endpoint: "{imds.endpoint}"}}
kubernetes: {{kubeconfig: "{kubeconfig}"}}
peers:
  ec2_endpoint: "{ec2.url}"
  subnets: {{10.77.0.0/16: us-west-2a}}
  {extra}
collectors: {{ena: {{enabled: false}}, ebpf: {{enabled: false}}, events: {{enabled: false}},
              podnet: {{enabled: false}}, nodenet: {{enabled: false}}}}
exporters: {{console: {{enabled: false}}}}
correlation: {{enabled: false}}
"""


def _probes(tmp_path: Path, text: str) -> dict[str, dict]:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["probes", "-c", str(path), "--format", "json"]) == 0
    return {s["name"]: s for s in json.loads(out.getvalue())}


def test_probes_asks_every_source_once_and_reports_them(doubles, tmp_path) -> None:
    imds, ec2, api, kubeconfig = doubles
    status = _probes(tmp_path, _config(imds, ec2, kubeconfig))["peer-zones"]
    assert status["active"], status
    assert status["reason"] == (
        "this node in us-west-2b, DescribeSubnets: 4 subnets in 3 zones, Node watch: 3 nodes, "
        "3 with a zone label, Service watch: 1 services with a ClusterIP, configuration: 1 "
        "ranges with zones")
    assert ec2.requests and ec2.requests[0]["Filter.1.Value.1"] == "vpc-0e9801d129EXAMPLE"
    assert ec2.scopes[0].endswith("/us-west-2/ec2/aws4_request")  # region from IMDS
    assert {r["path"] for r in api.requests} == {"/api/v1/nodes", "/api/v1/services"}


def test_probes_names_what_is_missing(doubles, tmp_path) -> None:
    imds, ec2, api, kubeconfig = doubles
    ec2.fail_next = [(403, "UnauthorizedOperation",
                      "You are not authorized to perform this operation.")]
    text = _config(imds, ec2, kubeconfig, "node_watch: false\n  service_watch: false")
    status = _probes(tmp_path, text)["peer-zones"]
    assert status["active"]  # this node's zone (IMDS) and the configured ranges still serve
    assert status["reason"].startswith(
        "this node in us-west-2b, configuration: 1 ranges with zones; missing: ")
    assert "DescribeSubnets (ClientError: An error occurred (UnauthorizedOperation)" in \
        status["reason"]
    assert "Node watch (off in configuration (peers.node_watch: false))" in status["reason"]
    assert "Service watch (off in configuration (peers.service_watch: false))" in \
        status["reason"]
    assert api.requests == []


def test_the_table_classes_peers_by_every_source(doubles) -> None:
    imds, ec2, api, kubeconfig = doubles
    loaded = load_text(_config(imds, ec2, kubeconfig), "agent.yaml")
    metadata, _ = load_metadata(ImdsConfig(enabled=True, endpoint=imds.endpoint), "/nonexistent")
    zones = PeerZones(loaded.config.peers, metadata, NODE, NoPods(),
                      api.core_api_factory())
    zones.check()
    table = zones.table()
    expect = {"10.158.112.84": (PeerClass.SAME_NODE, "us-west-2b"),
              "10.158.120.3": (PeerClass.SAME_ZONE, "us-west-2b"),
              "10.158.70.3": (PeerClass.SAME_ZONE, "us-west-2b"),  # another subnet, same zone
              "2600:1f14:abc:7b00::4": (PeerClass.OTHER_ZONE, "us-west-2a"),
              "10.158.170.3": (PeerClass.OTHER_ZONE, "us-west-2c"),
              "192.168.7.1": (PeerClass.OTHER_ZONE, "us-west-2c"),  # a node outside the VPC
              "10.77.1.1": (PeerClass.OTHER_ZONE, "us-west-2a"),  # configuration
              "172.20.0.1": (PeerClass.OTHER_VPC, ""),
              "10.100.0.10": (PeerClass.SERVICE, ""),  # kube-dns's ClusterIP
              "10.100.0.11": (PeerClass.OTHER_VPC, ""),
              "3.5.0.1": (PeerClass.INTERNET, "")}
    for address, want in expect.items():
        assert classify(table, ipaddress.ip_address(address)) == want, address
    assert zones.table() is table  # nothing changed: not rebuilt


def test_started_sources_follow_node_churn_and_the_table_stays_bounded(doubles) -> None:
    imds, ec2, api, kubeconfig = doubles
    loaded = load_text(_config(imds, ec2, kubeconfig, "describe_subnets: false"), "agent.yaml")
    metadata, _ = load_metadata(ImdsConfig(enabled=True, endpoint=imds.endpoint), "/nonexistent")
    zones = PeerZones(loaded.config.peers, metadata, NODE, NoPods(),
                      api.core_api_factory())
    zones.check()  # `probes` first, then the probe starts the sources for good
    zones.start()
    try:
        wait_until(lambda: len(zones.sources().nodes) == 3)
        base = len(zones.table().entries)
        for round_ in range(3):  # nodes outside every known subnet come and go
            names = [f"burst-{round_}-{i}" for i in range(20)]
            for i, name in enumerate(names):
                api.put_node(make_node(name, "us-west-2a", (f"172.20.{round_}.{i + 1}",)))
            wait_until(lambda: len(zones.table().entries) == base + 20)
            peer = ipaddress.ip_address(f"172.20.{round_}.5")
            assert classify(zones.table(), peer) == (PeerClass.OTHER_ZONE, "us-west-2a")
            for name in names:
                api.delete_node(name)
            wait_until(lambda: len(zones.table().entries) == base)
            assert classify(zones.table(), peer) == (PeerClass.OTHER_VPC, "")
    finally:
        zones.stop()


def test_a_reload_of_the_peers_section_builds_new_sources(doubles) -> None:
    imds, ec2, _api, kubeconfig = doubles
    metadata, _ = load_metadata(ImdsConfig(enabled=True, endpoint=imds.endpoint), "/nonexistent")
    agent = Agent(load_text(_config(imds, ec2, kubeconfig), "a.yaml"), {}, stream=io.StringIO(),
                  metadata=metadata, listen=False)
    try:
        before = agent.peer_zones
        agent.apply(load_text(_config(imds, ec2, kubeconfig, "node_watch: false"), "a.yaml"))
        assert agent.peer_zones is not before and agent.peer_zones.nodes is None
        assert "peers.node_watch: false" in agent.peer_zones.status().reason
    finally:
        agent.stop(flush=False)


def test_a_reload_without_the_peers_probe_stops_the_sources(doubles, tmp_path) -> None:
    """The sources run for the peers probe (here started as the probe would); a reload whose
    configuration has neither the probe nor a peers section stops them: no Node watch, no
    DescribeSubnets, and a bad file before that changes nothing (the last good config runs)."""
    imds, ec2, _api, kubeconfig = doubles
    metadata, _ = load_metadata(ImdsConfig(enabled=True, endpoint=imds.endpoint), "/nonexistent")
    path = tmp_path / "agent.yaml"
    path.write_text(_config(imds, ec2, kubeconfig))
    agent = Agent(load_file(path, {}), {}, stream=io.StringIO(), metadata=metadata, listen=False)
    reloader = ConfigReloader(agent, str(path), {})
    try:
        agent.peer_zones.start()
        wait_until(agent.peer_zones.node_infos)  # the Node watch's first list
        zones, good = agent.peer_zones, agent.loaded
        path.write_text(_config(imds, ec2, kubeconfig, "other_ranges: [not-a-cidr]"))
        assert not reloader.reload()
        assert agent.loaded is good and agent.peer_zones is zones and zones.running
        assert agent.counters.reloads["rejected"] == 1
        text = _config(imds, ec2, kubeconfig)
        path.write_text(text[:text.index("peers:")] + text[text.index("collectors:"):])
        assert reloader.reload()
        assert agent.loaded.config.peers == PeersConfig()
        assert not agent.peer_zones.running and not zones.running
        assert "not asked" in agent.peer_zones.status().reason
    finally:
        agent.stop(flush=False)
