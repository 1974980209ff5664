"""The peers probe and a Kubernetes Service on this kernel: a ClusterIP DNATed in the host.

Two test pods: the client C and the backend B, both in zone-a (``peers.subnets``). The
Kubernetes API double serves a Service shop/api whose ClusterIP (10.100.77.10) is in no
subnet, and a headless one; the agent's real Service watch (peers/sources.py, k8s/services.py)
lists it. An nftables NAT rule in the node's namespace does what kube-proxy does: DNAT of
the ClusterIP to B's address in PREROUTING (the reply is un-NATed by conntrack). C sends known
datagrams to the ClusterIP and B echoes them. At C's socket the peer is the ClusterIP
(class service, both directions, named shop/api in the top-peer records); at B's socket
it is C's real address (same_zone zone-a): the server end counts the real client.
A changed ClusterIP moves the kernel's entry with it.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig, PeersConfig
from otel_netreceiver.events.otlp_logs import event_attributes
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.peers.classes import PeerClass
from otel_netreceiver.peers.lpm import class_of
from otel_netreceiver.peers.records import PeerNames, PeerRecords
from otel_netreceiver.peers.sources import PeerZones
from tests.integration.test_ebpf_peers import _by_class, _delta
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.k8s_api import KubeApiDouble, make_service
from tests.support.pods import Pod, create_pod, destroy_pod, run
from tests.support.sdk_node import link_pods
from tests.support.soak import wait_until

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
C, B = 146, 147
CLUSTER_IP, MOVED_IP = "10.100.77.10", "10.100.77.20"
PORT = 9000
IP_UDP = 28
NFT_TABLE = "onr_test_svc"


class NoNodePods:
    def addresses(self) -> tuple[str, ...]:
        return ()


@pytest.fixture(scope="module")
def pods() -> Iterator[dict[int, Pod]]:
    made: dict[int, Pod] = {}
    try:
        for index in (C, B):
            made[index] = create_pod(index, "systemd")
        link_pods(list(made.values()))
        backend = made[B].pod_ip
        rules = (f"add table ip {NFT_TABLE}\n"
                 f"add chain ip {NFT_TABLE} pre {{ type nat hook prerouting priority -100; }}\n"
                 f"add rule ip {NFT_TABLE} pre ip daddr {{ {CLUSTER_IP}, {MOVED_IP} }} "
                 f"udp dport {PORT} dnat to {backend}\n")
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
        yield made
    finally:
        run("nft", "delete", "table", "ip", NFT_TABLE, check=False)
        for pod in made.values():
            destroy_pod(pod)


@pytest.fixture(scope="module")
def api() -> Iterator[KubeApiDouble]:
    double = KubeApiDouble()
    double.put_service(make_service("api", "shop", (CLUSTER_IP,)))
    double.put_service(make_service("db", "shop"))  # headless
    yield double
    double.close()


@pytest.fixture(scope="module")
def setup(pods: dict[int, Pod], api: KubeApiDouble) -> Iterator[tuple[EbpfCollector, list]]:
    cfg = PeersConfig(subnets={"10.251.146.0/24": "zone-a", "10.251.147.0/24": "zone-a"},
                      describe_subnets=False, node_watch=False)
    zones = PeerZones(cfg, InstanceMetadata(availability_zone="zone-a"), "node-t",
                      NoNodePods(), api.core_api_factory())
    zones.start()
    sent: list = []
    records = PeerRecords(lambda e: sent.append(e) or True, 5, 1000,
                          PeerNames(NoPods(), tuple, zones.service_infos))
    c = EbpfCollector(EbpfConfig(probes=["peers"]), "/proc", NoPods(), peer_table=zones.table,
                      peer_records=records)
    try:
        assert c.statuses() == {"peers": ""}, c.statuses()
        wait_until(lambda: zones.service_infos())  # the Service watch's first list
        yield c, sent
    finally:
        c.close()
        zones.stop()


def _sink(pod: Pod, count: int) -> subprocess.Popen:
    argv = ["ip", "netns", "exec", pod.netns, sys.executable, str(SUPPORT / "udp_counts.py"),
            "sink", pod.pod_ip, str(PORT), str(count), "echo"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_line(proc, "ready", time.monotonic() + 20)
    return proc


def test_client_counts_the_service_and_the_server_counts_the_real_client(
        pods: dict[int, Pod], setup: tuple[EbpfCollector, list]) -> None:
    collector, sent = setup
    client, backend = pods[C], pods[B]
    count, size = 4, 300
    sink = _sink(backend, count)
    first = collector.collect()  # writes the peer table (with the ClusterIP) into the kernel
    before = {p.uid: _by_class(first, p) for p in (client, backend)}
    sent.clear()
    out = client.exec(sys.executable, str(SUPPORT / "udp_counts.py"), "send",
                      f"{CLUSTER_IP}:{PORT}:{size}:{count}")
    assert int(sink.communicate(timeout=20)[0].split()[-1]) == count
    assert int(out.stdout.split()[-1]) == count  # every echo came back, from the ClusterIP
    after = collector.collect()
    got = {p.uid: _delta(_by_class(after, p), before[p.uid]) for p in (client, backend)}
    moved = [count, count * (size + IP_UDP)]
    assert got[client.uid] == {("transmit", "service", ""): moved,
                               ("receive", "service", ""): moved}
    assert got[backend.uid] == {("receive", "same_zone", "zone-a"): moved,
                                ("transmit", "same_zone", "zone-a"): moved}
    mine = [dict(event_attributes(e)) for e in sent if ("k8s.pod.uid", client.uid) in e.pod]
    assert sorted((r["network.io.direction"], r["peer.kind"], r["peer.name"], r["peer.class"],
                   r["network.peer.address"], r["peer.bytes"]) for r in mine) == [
        ("receive", "service", "shop/api", "service", CLUSTER_IP, moved[1]),
        ("transmit", "service", "shop/api", "service", CLUSTER_IP, moved[1])]
    theirs = [dict(event_attributes(e)) for e in sent if ("k8s.pod.uid", backend.uid) in e.pod]
    assert {(r["peer.kind"], r["network.peer.address"]) for r in theirs} == {
        ("address", client.pod_ip)}


def test_a_changed_cluster_ip_moves_in_the_kernel_table(
        api: KubeApiDouble, setup: tuple[EbpfCollector, list]) -> None:
    collector, _ = setup
    peers = collector._loaded["peers"]

    def kernel_class(address: str) -> PeerClass:
        raw = ipaddress.IPv6Address(f"::ffff:{address}").packed
        return class_of(peers.state.map.lookup(raw))

    collector.collect()
    assert kernel_class(CLUSTER_IP) is PeerClass.SERVICE
    assert kernel_class(MOVED_IP) is PeerClass.OTHER_VPC
    api.put_service(make_service("api", "shop", (MOVED_IP,)))

    def moved() -> bool:
        collector.collect()
        return kernel_class(MOVED_IP) is PeerClass.SERVICE
    wait_until(moved)
    assert kernel_class(CLUSTER_IP) is PeerClass.OTHER_VPC
    api.delete_service("shop", "api")

    def gone() -> bool:
        collector.collect()
        return kernel_class(MOVED_IP) is PeerClass.OTHER_VPC
    wait_until(gone)
