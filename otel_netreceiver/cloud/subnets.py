"""The VPC's subnets and their Availability Zones, from EC2 DescribeSubnets, cached.

Every address of a VPC is in exactly one subnet, and a subnet lives in one zone
(Amazon VPC User Guide, "Subnets for your VPC"), so the subnet list is the map
from a peer address to its zone that traffic by peer needs. It is asked through
botocore, with botocore's default credential chain (IRSA web identity, EKS Pod
Identity, profiles, instance role: the same chain as the AMP queries), filtered
to the node's VPC (IMDS), followed across pages, and refreshed every
``refresh`` seconds; a failed refresh keeps the last good list and retries
sooner (backing off to ``refresh``). Subnets change rarely; one call per node per
refresh is a small share of EC2's API request rate (EC2 API Reference, "Request
throttling": Describe* actions share the non-mutating bucket).

The IAM permission is ``ec2:DescribeSubnets`` (optional: without it the zones come
from Node objects and configuration, and ``probes`` says so).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RETRY_FIRST_S = 30.0


@dataclass(frozen=True, slots=True)
class Subnet:
    subnet_id: str
    vpc_id: str
    zone: str  # the zone name (us-west-2b), as node labels and IMDS name it
    zone_id: str  # the account-independent zone ID (usw2-az1)
    cidrs: tuple[str, ...]  # the IPv4 block and the associated IPv6 blocks


def parse_subnets(pages: Iterable[dict[str, Any]]) -> tuple[Subnet, ...]:
    """Subnets from DescribeSubnets pages as botocore parses them (pure).

    IPv6 blocks count only while associated (a disassociated block may be given to
    another subnet)."""
    out = []
    for page in pages:
        for item in page.get("Subnets") or ():
            v6 = [a["Ipv6CidrBlock"] for a in item.get("Ipv6CidrBlockAssociationSet") or ()
                  if (a.get("Ipv6CidrBlockState") or {}).get("State") == "associated"
                  and a.get("Ipv6CidrBlock")]
            v4 = [item["CidrBlock"]] if item.get("CidrBlock") else []
            out.append(Subnet(item.get("SubnetId", ""), item.get("VpcId", ""),
                              item.get("AvailabilityZone", ""),
                              item.get("AvailabilityZoneId", ""), tuple(v4 + v6)))
    return tuple(sorted(out, key=lambda s: s.subnet_id))


def ec2_client(region: str, endpoint: str = "", session: Any | None = None) -> Any:
    """A botocore EC2 client (short timeouts: the caller is a collector thread)."""
    import botocore.config
    import botocore.session

    session = session if session is not None else botocore.session.Session()
    config = botocore.config.Config(connect_timeout=3, read_timeout=10,
                                    retries={"mode": "standard", "max_attempts": 3})
    return session.create_client("ec2", region_name=region or None,
                                 endpoint_url=endpoint or None, config=config)


def describe_subnets(client: Any, vpc_id: str) -> tuple[Subnet, ...]:
    """Every subnet of ``vpc_id``, across pages (the I/O half of ``parse_subnets``)."""
    paginator = client.get_paginator("describe_subnets")
    pages = paginator.paginate(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
                               PaginationConfig={"PageSize": 1000})
    return parse_subnets(pages)


@dataclass
class SubnetStats:
    fetches: int = 0
    failures: int = 0
    last_error: str = ""
    fetched_at: float | None = None  # monotonic time of the last good fetch


class SubnetCache:
    """The last good subnet list of one VPC, refreshed when due."""

    def __init__(self, client_factory: Callable[[], Any], vpc_id: str, refresh: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.vpc_id = vpc_id
        self._client_factory, self._client = client_factory, None
        self._refresh, self._clock = refresh, clock
        self._subnets: tuple[Subnet, ...] = ()
        self._next = 0.0
        self._retry = RETRY_FIRST_S
        self.stats = SubnetStats()

    def subnets(self) -> tuple[Subnet, ...]:
        return self._subnets

    def refresh_if_due(self) -> bool:
        """Fetch when due; True when the list changed. Never raises."""
        now = self._clock()
        if now < self._next:
            return False
        try:
            self._client = self._client or self._client_factory()
            subnets = describe_subnets(self._client, self.vpc_id)
        except Exception as exc:  # credentials, permissions, throttling, the network
            self._failed(exc, now)
            return False
        self.stats.fetches += 1
        self.stats.fetched_at, self.stats.last_error = now, ""
        self._next, self._retry = now + self._refresh, RETRY_FIRST_S
        changed, self._subnets = subnets != self._subnets, subnets
        return changed

    def _failed(self, exc: Exception, now: float) -> None:
        self.stats.failures += 1
        message = f"{type(exc).__name__}: {str(exc)[:200]}"
        if message != self.stats.last_error:
            log.warning("DescribeSubnets for %s failed (zones of other subnets unknown "
                        "meanwhile): %s", self.vpc_id, message)
        self.stats.last_error = message
        self._next = now + self._retry
        self._retry = min(self._retry * 2, self._refresh)
