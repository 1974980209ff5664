"""From what the node knows about zones to the inputs of the peer table (pure).

Three sources, each optional, merged by prefix (the table's longest prefix wins):

- the VPC's subnets and their zones (EC2 DescribeSubnets), and this instance's
  own subnets (IMDS: they are in this instance's zone even without DescribeSubnets);
- the cluster's nodes (Node objects): each node's InternalIPs and pod CIDRs in the
  node's zone; this node's own addresses, pod CIDRs and pods' IPs are "same node";
- configuration: subnets of peered VPCs with their zones, and other ranges.

Apart from zones, the Services' ClusterIPs (the Service watch) and the configured Service
CIDRs (``peers.service_ranges``) are class service: a pod's socket sees the ClusterIP, not
the backend kube-proxy picks later, so the backend's zone is not known there.

Configuration wins over discovered subnets of the same prefix (the operator knows
what a peering hides). A node address inside a known subnet of the same zone adds
nothing, so it is left out: a large cluster costs the kernel table one entry per
subnet, not one per node.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from otel_netreceiver.cloud.subnets import Subnet
from otel_netreceiver.k8s.nodes import NodeInfo
from otel_netreceiver.k8s.services import ServiceInfo
from otel_netreceiver.peers.classes import PeerTable, build_table

NEED_NO_ZONE = "same_node, service, other_vpc, internet and link_local"


@dataclass(frozen=True, slots=True)
class ZoneSources:
    """Everything known at one moment; empty fields are sources that are missing."""

    node_name: str = ""
    imds_zone: str = ""
    imds_subnets: tuple[str, ...] = ()
    subnets: tuple[Subnet, ...] = ()  # DescribeSubnets
    nodes: tuple[NodeInfo, ...] = ()  # the Node watch
    pod_ips: tuple[str, ...] = ()  # this node's pods (its pod watch)
    configured: tuple[tuple[str, str], ...] = ()  # peers.subnets: (CIDR, zone)
    other_ranges: tuple[str, ...] = ()  # peers.other_ranges
    services: tuple[ServiceInfo, ...] = ()  # the Service watch
    service_ranges: tuple[str, ...] = ()  # peers.service_ranges

    def own_node(self) -> NodeInfo | None:
        return next((n for n in self.nodes if n.name == self.node_name), None)

    def node_zone(self) -> str:
        own = self.own_node()
        return self.imds_zone or (own.zone if own else "")


def subnet_zones(sources: ZoneSources) -> dict[str, str]:
    """CIDR → zone from every source, configuration last (it wins)."""
    zones: dict[str, str] = {}
    for subnet in sources.subnets:
        zones.update((cidr, subnet.zone) for cidr in subnet.cidrs if subnet.zone)
    own_zone = sources.node_zone()
    if own_zone:
        for cidr in sources.imds_subnets:
            zones.setdefault(cidr, own_zone)
    covered = _Covered(zones)
    for node in sources.nodes:
        if node.name == sources.node_name or not node.zone:
            continue
        zones.update((cidr, node.zone) for cidr in node.pod_cidrs)
        zones.update((address, node.zone) for address in node.addresses
                     if covered.zone(address) != node.zone)
    zones.update(sources.configured)
    return zones


class _Covered:
    """The zone of the known subnet holding an address: one dict probe per prefix length."""

    def __init__(self, zones: dict[str, str]) -> None:
        self._by_len: dict[tuple[int, int], dict[int, str]] = {}
        for cidr, zone in zones.items():
            net = ipaddress.ip_network(cidr, strict=False)
            key = (net.version, net.prefixlen)
            self._by_len.setdefault(key, {})[int(net.network_address)] = zone

    def zone(self, address: str) -> str:
        ip = ipaddress.ip_address(address)
        bits = ip.max_prefixlen
        for (version, prefixlen), nets in self._by_len.items():
            if version == ip.version:
                masked = int(ip) >> (bits - prefixlen) << (bits - prefixlen)
                if masked in nets:
                    return nets[masked]
        return ""


def build(sources: ZoneSources) -> PeerTable:
    own = sources.own_node()
    addresses = tuple(dict.fromkeys((*(own.addresses if own else ()), *sources.pod_ips)))
    return build_table(sources.node_zone(), subnet_zones(sources), node_addresses=addresses,
                       other_ranges=sources.other_ranges,
                       node_networks=own.pod_cidrs if own else (),
                       service_addresses=[ip for s in sources.services for ip in s.cluster_ips],
                       service_ranges=sources.service_ranges)


def describe(sources: ZoneSources, missing: dict[str, str]) -> tuple[bool, str]:
    """Whether any zone is known, and one line for ``probes``: what is used, what is missing.

    ``missing`` maps a source (DescribeSubnets, Node watch, IMDS) to why it gave nothing."""
    used = []
    if sources.subnets:
        used.append(f"DescribeSubnets: {len(sources.subnets)} subnets in "
                    f"{len({s.zone for s in sources.subnets})} zones")
    if sources.nodes:
        zoned = sum(1 for n in sources.nodes if n.zone)
        used.append(f"Node watch: {len(sources.nodes)} nodes, {zoned} with a zone label")
    if sources.services:
        used.append(f"Service watch: {len(sources.services)} services with a ClusterIP")
    if sources.configured:
        used.append(f"configuration: {len(sources.configured)} ranges with zones")
    zone = sources.node_zone()
    head = ", ".join([f"this node in {zone}" if zone else "this node's zone unknown", *used])
    tail = ["missing: " + "; ".join(f"{k} ({v})" for k, v in missing.items())] if missing else []
    ok = bool(zone and (sources.subnets or sources.nodes or sources.configured))
    if not ok:
        tail.append(f"without zones, {NEED_NO_ZONE} still work")
    return ok, "; ".join([head, *tail])
