"""Peer classes: the longest-prefix table the kernel classes each packet's peer with."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_netreceiver.peers.classes import PeerClass, build_table, classify

ip = ipaddress.ip_address
SUBNETS = {"10.0.0.0/19": "us-east-1a", "10.0.32.0/19": "us-east-1b",
           "10.0.64.0/19": "us-east-1c", "2600:1f18:1::/64": "us-east-1b"}


def table():  # type: ignore[no-untyped-def]
    return build_table("us-east-1a", SUBNETS, node_addresses=["10.0.1.10", "10.0.1.77"],
                       other_ranges=["192.168.100.0/24"])


@pytest.mark.parametrize(("address", "expected", "zone"), [
    ("10.0.1.77", PeerClass.SAME_NODE, "us-east-1a"),   # a pod of this node, /32 beats /19
    ("10.0.2.5", PeerClass.SAME_ZONE, "us-east-1a"),
    ("10.0.40.9", PeerClass.OTHER_ZONE, "us-east-1b"),
    ("2600:1f18:1::5", PeerClass.OTHER_ZONE, "us-east-1b"),
    ("10.0.200.1", PeerClass.OTHER_VPC, ""),            # private, no known subnet
    ("192.168.100.3", PeerClass.OTHER_VPC, ""),         # configured (peered VPC)
    ("169.254.169.254", PeerClass.LINK_LOCAL, ""),
    ("fd00:ec2::253", PeerClass.LINK_LOCAL, ""),
    ("52.94.0.1", PeerClass.INTERNET, ""),
    ("2a00:1450::1", PeerClass.INTERNET, ""),
])
def test_each_peer_gets_its_class_and_zone(address: str, expected: PeerClass, zone: str) -> None:
    assert classify(table(), ip(address)) == (expected, zone)


def test_without_zones_the_classes_that_need_none_still_work() -> None:
    bare = build_table("", {}, node_addresses=["10.0.1.10"])
    assert classify(bare, ip("10.0.1.10"))[0] is PeerClass.SAME_NODE
    assert classify(bare, ip("10.0.2.5"))[0] is PeerClass.OTHER_VPC
    assert classify(bare, ip("8.8.8.8"))[0] is PeerClass.INTERNET
    assert bare.zones == ()


def test_keys_are_16_bytes_with_ipv4_mapped() -> None:
    entry = next(e for e in table().entries if e.prefixlen == 96 + 19
                 and e.address[-4:] == bytes([10, 0, 32, 0]))
    assert len(entry.address) == 16 and entry.address[10:12] == b"\xff\xff"
    assert entry.peer_class is PeerClass.OTHER_ZONE


def test_bad_configuration_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"peers.other_ranges: 'corp' is not a CIDR"):
        build_table("a", {}, other_ranges=["corp"])
    with pytest.raises(ValueError, match=r"peers.node: '10.0.0.0/8' is not an IP address"):
        build_table("a", {}, node_addresses=["10.0.0.0/8"])


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_the_table_agrees_with_a_direct_reading_of_the_rules(address) -> None:  # type: ignore[no-untyped-def]
    peer_class, zone = classify(table(), address)
    if str(address) in ("10.0.1.10", "10.0.1.77"):
        assert peer_class is PeerClass.SAME_NODE
    elif any(address in ipaddress.ip_network(c) for c in ("169.254.0.0/16", "fe80::/10",
                                                          "fd00:ec2::/32")):
        assert peer_class is PeerClass.LINK_LOCAL
    elif any(address.version == ipaddress.ip_network(c).version
             and address in ipaddress.ip_network(c) for c in SUBNETS):
        assert peer_class in (PeerClass.SAME_ZONE, PeerClass.OTHER_ZONE) and zone
    elif address.is_private or address in ipaddress.ip_network("100.64.0.0/10"):
        assert peer_class in (PeerClass.OTHER_VPC, PeerClass.INTERNET)
    else:
        assert peer_class is PeerClass.INTERNET
