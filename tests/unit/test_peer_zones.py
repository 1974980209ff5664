"""Zone sources merged into the peer table: DescribeSubnets, Node objects, IMDS, configuration."""

from __future__ import annotations

import ipaddress
import time

from otel_netreceiver.cloud.subnets import Subnet
from otel_netreceiver.k8s.nodes import NodeInfo
from otel_netreceiver.peers.classes import PeerClass, classify
from otel_netreceiver.peers.zones import ZoneSources, build, describe, subnet_zones

ip = ipaddress.ip_address
VPC = "vpc-1"
SUBNETS = (Subnet("subnet-a", VPC, "us-west-2a", "usw2-az2", ("10.158.128.0/19",)),
           Subnet("subnet-b", VPC, "us-west-2b", "usw2-az1",
                  ("10.158.112.0/20", "2600:1f14:abc:7c00::/64")),
           Subnet("subnet-c", VPC, "us-west-2c", "usw2-az3", ("10.158.160.0/19",)))
ME = NodeInfo("me", "us-west-2b", ("10.158.112.84",), ())
NODES = (ME, NodeInfo("n-a", "us-west-2a", ("10.158.130.7",), ()),
         NodeInfo("overlay", "us-west-2c", ("192.168.50.4",), ("10.244.3.0/24",)),
         NodeInfo("unlabelled", "", ("10.158.161.2",), ()))


def test_every_source_together() -> None:
    sources = ZoneSources("me", "us-west-2b", ("10.158.112.0/20",), SUBNETS, NODES,
                          pod_ips=("10.158.113.9",),
                          configured=(("10.20.0.0/16", "us-west-2a"),),
                          other_ranges=("172.31.0.0/16",))
    table = build(sources)
    for address, expected in [
        ("10.158.113.9", (PeerClass.SAME_NODE, "us-west-2b")),   # a pod of this node
        ("10.158.112.84", (PeerClass.SAME_NODE, "us-west-2b")),  # this node
        ("10.158.120.1", (PeerClass.SAME_ZONE, "us-west-2b")),
        ("2600:1f14:abc:7c00::9", (PeerClass.SAME_ZONE, "us-west-2b")),
        ("10.158.130.7", (PeerClass.OTHER_ZONE, "us-west-2a")),
        ("10.244.3.17", (PeerClass.OTHER_ZONE, "us-west-2c")),   # an overlay node's pod CIDR
        ("192.168.50.4", (PeerClass.OTHER_ZONE, "us-west-2c")),  # a node outside the subnets
        ("10.20.5.5", (PeerClass.OTHER_ZONE, "us-west-2a")),     # configured (peered VPC)
        ("172.31.0.9", (PeerClass.OTHER_VPC, "")),
        ("52.94.0.1", (PeerClass.INTERNET, "")),
    ]:
        assert classify(table, ip(address)) == expected, address


def test_node_addresses_inside_a_subnet_of_their_zone_add_no_entry() -> None:
    zones = subnet_zones(ZoneSources("me", "us-west-2b", (), SUBNETS, NODES))
    assert "10.158.130.7" not in zones  # n-a's subnet already says us-west-2a
    assert zones["192.168.50.4"] == "us-west-2c" and zones["10.244.3.0/24"] == "us-west-2c"
    assert "10.158.161.2" not in zones  # a node without a zone label says nothing


def test_without_describe_subnets_nodes_and_imds_still_give_zones() -> None:
    table = build(ZoneSources("me", "", ("10.158.112.0/20",), (), NODES))
    # this node's zone from its own Node label, its subnet from IMDS
    assert classify(table, ip("10.158.120.1")) == (PeerClass.SAME_ZONE, "us-west-2b")
    assert classify(table, ip("10.158.130.7")) == (PeerClass.OTHER_ZONE, "us-west-2a")
    # another address of that subnet: no source knows its zone
    assert classify(table, ip("10.158.130.8")) == (PeerClass.OTHER_VPC, "")


def test_configuration_wins_over_a_discovered_subnet() -> None:
    zones = subnet_zones(ZoneSources("me", "us-west-2b", (), SUBNETS, (),
                                     configured=(("10.158.160.0/19", "us-west-2a"),)))
    assert zones["10.158.160.0/19"] == "us-west-2a"


def test_nothing_known_still_classes_what_needs_no_zone_and_says_what_is_missing() -> None:
    sources = ZoneSources("me", pod_ips=("10.1.0.5",))
    table = build(sources)
    assert classify(table, ip("10.1.0.5"))[0] is PeerClass.SAME_NODE
    assert classify(table, ip("10.1.0.6"))[0] is PeerClass.OTHER_VPC
    assert classify(table, ip("169.254.169.254"))[0] is PeerClass.LINK_LOCAL
    assert classify(table, ip("1.1.1.1"))[0] is PeerClass.INTERNET
    ok, line = describe(sources, {"IMDS": "not an EC2 instance",
                                  "Node watch": "no Kubernetes API"})
    assert not ok
    assert line == ("this node's zone unknown; missing: IMDS (not an EC2 instance); Node watch "
                    "(no Kubernetes API); without zones, same_node, service, other_vpc, "
                    "internet and link_local still work")


def test_the_status_line_counts_what_is_used() -> None:
    ok, line = describe(ZoneSources("me", "us-west-2b", (), SUBNETS, NODES), {})
    assert ok and line == ("this node in us-west-2b, DescribeSubnets: 3 subnets in 3 zones, "
                           "Node watch: 4 nodes, 3 with a zone label")


def test_a_large_cluster_is_merged_quickly_and_costs_one_entry_per_subnet() -> None:
    subnets = tuple(Subnet(f"s{i}", VPC, f"z{i % 3}", "", (f"10.{i}.0.0/16",)) for i in range(60))
    nodes = tuple(NodeInfo(f"n{i}", f"z{(i // 250) % 3}", (f"10.{i // 250 * 3 + (i // 250) % 3}"
                                                            f".{i % 250}.{i % 200 + 1}",), ())
                  for i in range(5000))
    started = time.perf_counter()
    table = build(ZoneSources("n0", "z0", (), subnets, nodes))
    elapsed = time.perf_counter() - started
    assert len(table.entries) < 60 + 20  # subnets, private and link-local ranges, this node
    assert elapsed < 2.0, elapsed
