"""The peer table in a real BPF_MAP_TYPE_LPM_TRIE: the kernel answers as classify() does."""

from __future__ import annotations

import ipaddress
import os
import random

import pytest

from otel_netreceiver.bpf.probes.peers.reader import PeersReader
from otel_netreceiver.peers.classes import PeerClass, build_table, classify
from otel_netreceiver.peers.lpm import PeerMap, declaration, rows

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading a BPF map needs root")

SUBNETS = {"10.0.0.0/19": "us-east-1a", "10.0.32.0/19": "us-east-1b",
           "10.0.64.0/19": "us-east-1c", "2600:1f18:1::/64": "us-east-1b",
           "2600:1f18:2::/64": "us-east-1a"}


def _mapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    if address.version == 4:
        return ipaddress.IPv6Address("::ffff:" + str(address)).packed
    return address.packed


@pytest.fixture
def peer_map():
    bcc = pytest.importorskip("bcc", reason="bcc (python3-bpfcc) is not installed")
    program = declaration("peer_table", 64) + (
        "int noop(void *ctx) { return 0; }\n")  # a program for bcc to load with the map
    bpf = bcc.BPF(text=program.encode())
    try:
        yield PeerMap(bpf[b"peer_table"])
    finally:
        bpf.cleanup()


def _table(node_addresses: tuple[str, ...] = ("10.0.1.10", "10.0.1.77", "2600:1f18:2::10")):
    return build_table("us-east-1a", SUBNETS, node_addresses=node_addresses,
                       other_ranges=["192.168.100.0/24"])


def _kernel(peer_map: PeerMap, table, address: str) -> tuple[PeerClass, str]:  # type: ignore[no-untyped-def]
    value = peer_map.lookup(_mapped(ipaddress.ip_address(address)))
    if value is None:
        return PeerClass.INTERNET, ""
    return PeerClass(value[0]), table.zone_name(value[1])


@pytest.mark.parametrize("address", [
    "10.0.1.77", "10.0.1.78", "10.0.40.9", "10.0.200.1", "192.168.100.3", "192.168.101.3",
    "169.254.169.254", "8.8.8.8", "2600:1f18:2::10", "2600:1f18:2::11", "2600:1f18:1::5",
    "fe80::1", "fd00:ec2::253", "fd12::1", "2a00:1450::1"])
def test_longest_prefix_wins_in_the_kernel_for_ipv4_and_ipv6(peer_map, address) -> None:
    table = _table()
    stats = peer_map.sync(table)
    assert stats.entries == len(table.entries) and stats.refused == 0
    assert _kernel(peer_map, table, address) == classify(table, ipaddress.ip_address(address))


def test_random_addresses_get_the_same_answer_from_the_kernel_and_the_model(peer_map) -> None:
    table = _table()
    peer_map.sync(table)
    rng = random.Random(7)
    nets = [ipaddress.ip_network(c) for c in (*SUBNETS, "10.0.0.0/8", "192.168.100.0/24")]
    for _ in range(500):  # inside the known prefixes (where the trie has depth) and outside
        net = rng.choice(nets)
        inside = net[rng.randrange(net.num_addresses)]
        outside = ipaddress.ip_address(rng.getrandbits(32 if rng.random() < 0.5 else 128))
        for address in (inside, outside):
            assert _kernel(peer_map, table, str(address)) == classify(table, address), address


def test_an_update_replaces_changed_rows_and_removes_gone_ones(peer_map) -> None:
    peer_map.sync(_table())
    assert _kernel(peer_map, _table(), "10.0.1.77")[0] is PeerClass.SAME_NODE
    smaller = _table(node_addresses=("10.0.1.10",))  # the pod at .77 left this node
    stats = peer_map.sync(smaller)
    assert stats.deletes == 2 and stats.entries == len(smaller.entries)
    assert _kernel(peer_map, smaller, "10.0.1.77") == (PeerClass.SAME_ZONE, "us-east-1a")
    assert _kernel(peer_map, smaller, "2600:1f18:2::10") == (PeerClass.SAME_ZONE, "us-east-1a")
    writes = stats.writes
    peer_map.sync(smaller)  # nothing changed: nothing written
    assert peer_map.stats.writes == writes


def test_a_full_map_refuses_writes_and_says_so(peer_map) -> None:
    crowded = build_table("us-east-1a", {f"10.{i}.0.0/16": "us-east-1a" for i in range(80)})
    stats = peer_map.sync(crowded)
    assert stats.entries == 64 and stats.refused == len(rows(crowded)) - 64
    assert "space" in stats.last_error.lower()
    # what `probes` says of the loaded peers probe (collectors/ebpf.py: its reader's status)
    line = PeersReader(peer_map).status()
    assert line.startswith("peer table 64 prefixes, ") and (
        f"{stats.refused} writes refused (map full: " in line)
