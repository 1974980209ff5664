"""Which service a DNS or link-local packet went to: the classes the DNS metrics are cut by.

Addresses are configuration with AWS's documented defaults (docs/background.md,
"Link-local services and the ENI allowance"): the Amazon DNS resolver answers on
169.254.169.253, fd00:ec2::253 and the VPC's base address plus two; the instance
metadata service on 169.254.169.254 and fd00:ec2::254; Amazon Time Sync on
169.254.169.123 and fd00:ec2::123. NodeLocal DNSCache listens on 169.254.20.10 by
convention and the EKS Pod Identity agent on 169.254.170.23 and fd00:ec2::23: both are
answered on the node itself, not by the ENI, so their packets never count against the ENI's
link-local allowance. The cluster DNS service address is the cluster's own, so all of
these are settings. Classification is a pure function over parsed addresses, so the
kernel's raw bytes, the history and the tests all go through the same rule.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ResolverClass(enum.StrEnum):
    """The ``dns.resolver.class`` attribute: a few values, never an address."""

    CLUSTER = "cluster_dns"
    NODE_LOCAL = "node_local"
    AMAZON = "amazon"
    OTHER = "other"


class LinkLocalService(enum.StrEnum):
    """The link-local services whose packets count against the ENI's 1024 packets/s."""

    DNS = "amazon_dns"
    IMDS = "imds"
    TIME_SYNC = "time_sync"


class NodeService(enum.StrEnum):
    """Link-local services answered on the node: counted per pod, never against the ENI."""

    NODE_LOCAL_DNS = "node_local_dns"
    POD_IDENTITY = "pod_identity"


AMAZON_DNS = ("169.254.169.253", "fd00:ec2::253")
IMDS = ("169.254.169.254", "fd00:ec2::254")
TIME_SYNC = ("169.254.169.123", "fd00:ec2::123")
NODE_LOCAL_DNS = ("169.254.20.10",)
POD_IDENTITY = ("169.254.170.23", "fd00:ec2::23")


def _addresses(texts: Iterable[str], where: str) -> frozenset[Address]:
    out = set()
    for text in texts:
        try:
            out.add(ipaddress.ip_address(text))
        except ValueError as exc:
            raise ValueError(f"{where}: {text!r} is not an IP address") from exc
    return frozenset(out)


def vpc_resolver(cidr: str) -> str:
    """The Amazon resolver's in-VPC address: the VPC CIDR's base plus two."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4:
        raise ValueError(f"{cidr!r}: the VPC+2 resolver exists for IPv4 CIDRs only")
    return str(network.network_address + 2)


@dataclass(frozen=True, slots=True)
class ServiceAddresses:
    """Where the node's resolvers and link-local services are; built once per config."""

    cluster_dns: frozenset[Address] = frozenset()
    node_local_dns: frozenset[Address] = frozenset()
    amazon_dns: frozenset[Address] = frozenset()
    imds: frozenset[Address] = frozenset()
    time_sync: frozenset[Address] = frozenset()
    pod_identity: frozenset[Address] = frozenset()

    @classmethod
    def build(cls, cluster_dns: Iterable[str] = (), node_local_dns: Iterable[str] = NODE_LOCAL_DNS,
              vpc_cidrs: Iterable[str] = (), amazon_dns: Iterable[str] = AMAZON_DNS,
              imds: Iterable[str] = IMDS, time_sync: Iterable[str] = TIME_SYNC,
              where: str = "dns",
              pod_identity: Iterable[str] = POD_IDENTITY) -> ServiceAddresses:
        """From configuration text; a bad address, or one given to two link-local services
        (its packets could count as only one), raises naming the keys it came from."""
        vpc = [vpc_resolver(c) for c in vpc_cidrs]
        built = cls(_addresses(cluster_dns, f"{where}.cluster_dns"),
                    _addresses(node_local_dns, f"{where}.node_local_dns"),
                    _addresses([*amazon_dns, *vpc], f"{where}.amazon_dns"),
                    _addresses(imds, f"{where}.imds"), _addresses(time_sync, f"{where}.time_sync"),
                    _addresses(pod_identity, f"{where}.pod_identity"))
        built._check_disjoint(where)
        return built

    def _check_disjoint(self, where: str) -> None:
        seen: dict[Address, str] = {}
        for name in ("amazon_dns", "imds", "time_sync", "node_local_dns", "pod_identity"):
            for address in getattr(self, name):
                if address in seen:
                    raise ValueError(f"{where}.{name}: {address} is also in "
                                     f"{where}.{seen[address]}; a link-local address belongs "
                                     "to one service")
                seen[address] = name

    def resolver_class(self, server: Address) -> ResolverClass:
        """The class of the server a query went to (or a response came from)."""
        if server in self.node_local_dns:
            return ResolverClass.NODE_LOCAL
        if server in self.amazon_dns:
            return ResolverClass.AMAZON
        if server in self.cluster_dns:
            return ResolverClass.CLUSTER
        return ResolverClass.OTHER

    def link_local_service(self, address: Address) -> LinkLocalService | None:
        """The ENI-allowance service behind an address, or None.

        The VPC+2 resolver address is not link-local, but AWS counts it against the
        same allowance as 169.254.169.253 (same resolver), so it is classed with it.
        """
        if address in self.amazon_dns:
            return LinkLocalService.DNS
        if address in self.imds:
            return LinkLocalService.IMDS
        if address in self.time_sync:
            return LinkLocalService.TIME_SYNC
        return None

    def node_service(self, address: Address) -> NodeService | None:
        """The link-local service answered on the node behind an address, or None."""
        if address in self.node_local_dns:
            return NodeService.NODE_LOCAL_DNS
        if address in self.pod_identity:
            return NodeService.POD_IDENTITY
        return None
