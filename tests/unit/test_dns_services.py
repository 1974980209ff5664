"""Resolver classes and link-local services: the attributes DNS metrics are cut by."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_netreceiver.dns.services import (
    LinkLocalService,
    ResolverClass,
    ServiceAddresses,
    vpc_resolver,
)

ip = ipaddress.ip_address


def test_amazon_defaults_and_the_vpc_plus_two_resolver() -> None:
    services = ServiceAddresses.build(cluster_dns=["10.100.0.10"], vpc_cidrs=["10.0.0.0/16"])
    assert services.resolver_class(ip("10.0.0.2")) is ResolverClass.AMAZON
    assert services.resolver_class(ip("169.254.169.253")) is ResolverClass.AMAZON
    assert services.resolver_class(ip("fd00:ec2::253")) is ResolverClass.AMAZON
    assert services.resolver_class(ip("169.254.20.10")) is ResolverClass.NODE_LOCAL
    assert services.resolver_class(ip("10.100.0.10")) is ResolverClass.CLUSTER
    assert services.resolver_class(ip("8.8.8.8")) is ResolverClass.OTHER


def test_link_local_services_count_the_eni_allowance_ones_only() -> None:
    services = ServiceAddresses.build(vpc_cidrs=["172.31.0.0/16"])
    assert services.link_local_service(ip("169.254.169.254")) is LinkLocalService.IMDS
    assert services.link_local_service(ip("fd00:ec2::254")) is LinkLocalService.IMDS
    assert services.link_local_service(ip("169.254.169.123")) is LinkLocalService.TIME_SYNC
    assert services.link_local_service(ip("172.31.0.2")) is LinkLocalService.DNS
    # answered on the node itself, never through the ENI
    assert services.link_local_service(ip("169.254.20.10")) is None
    assert services.link_local_service(ip("169.254.170.23")) is None


def test_vpc_plus_two_is_computed_from_any_address_of_the_cidr() -> None:
    assert vpc_resolver("192.168.0.0/16") == "192.168.0.2"
    assert vpc_resolver("10.1.2.3/16") == "10.1.0.2"
    with pytest.raises(ValueError, match="IPv4 CIDRs only"):
        vpc_resolver("2600:1f18::/56")


def test_a_bad_address_names_the_setting_it_came_from() -> None:
    with pytest.raises(ValueError, match=r"collectors.dns.cluster_dns: 'kube-dns'"):
        ServiceAddresses.build(cluster_dns=["kube-dns"], where="collectors.dns")


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_every_address_has_exactly_one_resolver_class(address) -> None:  # type: ignore[no-untyped-def]
    services = ServiceAddresses.build(cluster_dns=["10.100.0.10"], vpc_cidrs=["10.0.0.0/16"])
    assert services.resolver_class(address) in set(ResolverClass)
