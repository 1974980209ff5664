"""The peer classes of a node and the longest-prefix table that classes an address.

A per-packet program cannot afford one series per peer, and a node may talk to
thousands. So user space turns what it knows (the node's own pod and node
addresses, the VPC's subnets and their zones, configured ranges) into a
longest-prefix-match table, and the kernel classes each packet's peer with one
``BPF_MAP_TYPE_LPM_TRIE`` lookup. This module builds that table as a pure
function, so the kernel's answer can be checked against the same rule in tests
(``classify``).

IPv4 addresses are stored in their IPv4-mapped IPv6 form (``::ffff:a.b.c.d``,
RFC 4291 section 2.5.5.2), so one trie with 16-byte keys serves both families.
Same-pod traffic (a pod talking to itself over loopback) is recognised in the
kernel by the device, not by address, so it has a class but no table entry.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAPPED_V4 = ipaddress.IPv6Network("::ffff:0:0/96")
NO_ZONE = 0  # zone index 0: none known; real zones are 1..255


class PeerClass(enum.IntEnum):
    """The ``peer.class`` attribute; the numbers are what the kernel map stores."""

    INTERNET = 0  # the default: anything no rule claims
    SAME_POD = 1
    SAME_NODE = 2
    SAME_ZONE = 3
    OTHER_ZONE = 4
    OTHER_VPC = 5  # private or configured ranges outside this VPC's known zones
    LINK_LOCAL = 6
    SERVICE = 7  # a Kubernetes Service's ClusterIP: the backend is chosen after the socket

    @property
    def label(self) -> str:
        return self.name.lower()


# Not the internet even when no subnet claims them (RFC 1918, RFC 6598, RFC 4193).
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
LINK_LOCAL_RANGES = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::/32")


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the kernel's LPM trie: prefix length over the 16-byte key, and the value."""

    prefixlen: int
    address: bytes  # 16 bytes, IPv4 mapped
    peer_class: PeerClass
    zone: int  # index into PeerTable.zones, NO_ZONE when unknown


@dataclass(frozen=True, slots=True)
class PeerTable:
    entries: tuple[Entry, ...]
    zones: tuple[str, ...]  # zones[i - 1] is the name of zone index i

    def zone_name(self, index: int) -> str:
        return self.zones[index - 1] if 1 <= index <= len(self.zones) else ""


def _key(network: Network) -> tuple[int, bytes]:
    if network.version == 4:
        mapped = int(MAPPED_V4.network_address) | int(network.network_address)
        return 96 + network.prefixlen, mapped.to_bytes(16, "big")
    return network.prefixlen, network.network_address.packed


def _networks(texts: Iterable[str], where: str) -> list[Network]:
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"{where}: {text!r} is not a CIDR or address") from exc
    return out


def build_table(node_zone: str, subnets: Mapping[str, str], node_addresses: Iterable[str] = (),
                other_ranges: Iterable[str] = (), where: str = "peers",
                node_networks: Iterable[str] = (), service_addresses: Iterable[str] = (),
                service_ranges: Iterable[str] = ()) -> PeerTable:
    """The table for a node in ``node_zone``.

    ``subnets`` maps each known subnet CIDR to its zone (DescribeSubnets, Node
    objects, configuration); ``node_addresses`` are this node's own and its pods'
    addresses and ``node_networks`` its pod CIDRs (same node); ``other_ranges`` are
    peered VPCs or on-premises ranges; ``service_addresses`` the Services' ClusterIPs
    (host routes) and ``service_ranges`` the cluster's Service CIDRs (service).
    Longer prefixes win, so a pod address of this node is "same node" although
    its subnet is also in the table.
    """
    zones = sorted({zone for zone in subnets.values() if zone} | ({node_zone} - {""}))
    if len(zones) > 255:
        raise ValueError(f"{where}: {len(zones)} zones; the kernel table holds 255")
    index = {zone: i for i, zone in enumerate(zones, start=1)}
    rows: dict[tuple[int, bytes], Entry] = {}

    def put(networks: Iterable[Network], peer_class: PeerClass, zone: int = NO_ZONE) -> None:
        for network in networks:
            prefixlen, address = _key(network)
            rows[(prefixlen, address)] = Entry(prefixlen, address, peer_class, zone)

    put(_networks(PRIVATE_RANGES, where), PeerClass.OTHER_VPC)
    put(_networks(other_ranges, f"{where}.other_ranges"), PeerClass.OTHER_VPC)
    for cidr, zone in sorted(subnets.items()):
        same = bool(node_zone) and zone == node_zone
        peer_class = PeerClass.SAME_ZONE if same else PeerClass.OTHER_ZONE
        if not zone:
            peer_class = PeerClass.OTHER_VPC
        put(_networks([cidr], f"{where}.subnets"), peer_class, index.get(zone, NO_ZONE))
    put(_networks(service_ranges, f"{where}.service_ranges"), PeerClass.SERVICE)
    put(_networks(LINK_LOCAL_RANGES, where), PeerClass.LINK_LOCAL)
    put([ipaddress.ip_network(a) for a in _addresses(service_addresses, f"{where}.services")],
        PeerClass.SERVICE)
    put([ipaddress.ip_network(a) for a in _addresses(node_addresses, f"{where}.node")]
        + _networks(node_networks, f"{where}.node"), PeerClass.SAME_NODE,
        index.get(node_zone, NO_ZONE))
    return PeerTable(tuple(rows.values()), tuple(zones))


def _addresses(texts: Iterable[str], where: str) -> list[Address]:
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_address(text))
        except ValueError as exc:
            raise ValueError(f"{where}: {text!r} is not an IP address") from exc
    return out


def classify(table: PeerTable, address: Address) -> tuple[PeerClass, str]:
    """What the kernel's LPM lookup answers for ``address``: class and zone name."""
    _, key = _key(ipaddress.ip_network(address))
    wanted = int.from_bytes(key, "big")
    best: Entry | None = None
    for entry in table.entries:
        shift = 128 - entry.prefixlen
        if (int.from_bytes(entry.address, "big") >> shift) == (wanted >> shift) and (
                best is None or entry.prefixlen > best.prefixlen):
            best = entry
    if best is None:
        return PeerClass.INTERNET, ""
    return best.peer_class, table.zone_name(best.zone)
