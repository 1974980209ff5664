"""DescribeSubnets through botocore against a loopback EC2 double replaying recorded pages."""

from __future__ import annotations

import pytest

from otel_netreceiver.cloud.subnets import Subnet, SubnetCache, ec2_client
from tests.support.ec2_double import Ec2Double, static_aws_credentials

pytest.importorskip("botocore", reason="botocore (the amp extra) is not installed")

VPC = "vpc-0e9801d129EXAMPLE"


@pytest.fixture
def ec2(monkeypatch, tmp_path):
    # botocore's default chain, fed by the variables (nothing from this machine's files or IMDS)
    static_aws_credentials(monkeypatch, tmp_path, "AKIDSUBNETS", imds=False)
    double = Ec2Double()
    yield double
    double.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(ec2: Ec2Double, clock: Clock) -> SubnetCache:
    return SubnetCache(lambda: ec2_client("us-west-2", ec2.url), VPC, 600.0, clock=clock)


def test_every_page_of_the_vpcs_subnets_with_zones_and_associated_ipv6(ec2) -> None:
    cache = _cache(ec2, Clock())
    assert cache.refresh_if_due()
    assert cache.subnets() == (
        Subnet("subnet-0a1b2c3d4e5f60001", VPC, "us-west-2b", "usw2-az1",
               ("10.158.64.0/19", "2600:1f14:abc:7a00::/64")),
        Subnet("subnet-0a1b2c3d4e5f60002", VPC, "us-west-2a", "usw2-az2",
               ("10.158.128.0/19", "2600:1f14:abc:7b00::/64")),  # not the disassociated one
        Subnet("subnet-0a1b2c3d4e5f60003", VPC, "us-west-2c", "usw2-az3", ("10.158.160.0/19",)),
        Subnet("subnet-0a1b2c3d4e5f60004", VPC, "us-west-2b", "usw2-az1", ("10.158.112.0/20",)))
    first, second = ec2.requests
    assert (first["Action"], first["Filter.1.Name"], first["Filter.1.Value.1"]) == (
        "DescribeSubnets", "vpc-id", VPC)
    assert "NextToken" not in first and second["NextToken"] == "eyJ2IjoiMiIsImMiOiJwYWdlMiJ9"
    # signed by botocore with the chain's credentials, for EC2 in the node's region
    assert all(s.startswith("AKIDSUBNETS/") and s.endswith("/us-west-2/ec2/aws4_request")
               for s in ec2.scopes)


def test_cached_until_the_refresh_is_due(ec2) -> None:
    clock = Clock()
    cache = _cache(ec2, clock)
    cache.refresh_if_due()
    clock.now += 599
    assert not cache.refresh_if_due() and len(ec2.requests) == 2
    clock.now += 2
    assert not cache.refresh_if_due()  # asked again; nothing changed
    assert len(ec2.requests) == 4 and cache.stats.fetches == 2


def test_a_refused_call_keeps_the_last_list_and_retries_sooner(ec2) -> None:
    clock = Clock()
    cache = _cache(ec2, clock)
    cache.refresh_if_due()
    known = cache.subnets()
    clock.now += 600
    ec2.fail_next = [(403, "UnauthorizedOperation",
                      "You are not authorized to perform this operation.")] * 2
    assert not cache.refresh_if_due()
    assert cache.subnets() == known
    assert "UnauthorizedOperation" in cache.stats.last_error and cache.stats.failures == 1
    clock.now += 29
    cache.refresh_if_due()
    assert cache.stats.failures == 1  # not yet: retried after 30 s
    clock.now += 1
    cache.refresh_if_due()
    assert cache.stats.failures == 2
    clock.now += 59
    cache.refresh_if_due()
    assert cache.stats.failures == 2  # the next wait doubled
    clock.now += 1
    cache.refresh_if_due()
    assert cache.stats.last_error == "" and cache.stats.fetches == 2


def test_no_credentials_is_an_error_not_a_crash(ec2, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    cache = _cache(ec2, Clock())
    assert not cache.refresh_if_due()
    assert cache.subnets() == () and "NoCredentialsError" in cache.stats.last_error
    assert ec2.requests == []
