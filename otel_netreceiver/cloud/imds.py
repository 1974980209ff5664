"""EC2 instance metadata through IMDSv2, fetched once and cached.

IMDSv2: PUT /latest/api/token with a TTL header, then GETs carrying the
token. Off EC2 the agent must not wait on (or send packets to) the
link-local address, so "auto" mode first looks for local evidence of EC2 in
sysfs (DMI vendor "Amazon EC2", a board asset tag "i-...", or a Xen
hypervisor UUID starting with "ec2", as the AWS SDKs and cloud-init do).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import requests

from otel_netreceiver.config.schema import ImdsConfig

log = logging.getLogger(__name__)

_TOKEN_TTL = "300"


@dataclass(frozen=True)
class InstanceMetadata:
    instance_id: str = ""
    instance_type: str = ""
    availability_zone: str = ""
    region: str = ""
    account_id: str = ""
    eni_by_mac: dict[str, str] = field(default_factory=dict)
    vpc_id: str = ""  # the VPC of the first interface that names one
    subnet_cidrs: tuple[str, ...] = ()  # the subnets of this instance's interfaces (this zone)

    def resource_attributes(self) -> dict[str, str]:
        if not self.instance_id:
            return {}
        pairs = {"cloud.provider": "aws", "cloud.platform": "aws_ec2",
                 "cloud.region": self.region, "cloud.availability_zone": self.availability_zone,
                 "cloud.account.id": self.account_id, "host.id": self.instance_id,
                 "host.type": self.instance_type}
        return {k: v for k, v in pairs.items() if v}


def looks_like_ec2(sys_root: str) -> bool:
    """Local evidence of EC2, read from sysfs (no network)."""
    checks = ((Path(sys_root, "devices/virtual/dmi/id/sys_vendor"), lambda s: s == "Amazon EC2"),
              (Path(sys_root, "devices/virtual/dmi/id/board_asset_tag"),
               lambda s: s.startswith("i-")),
              (Path(sys_root, "hypervisor/uuid"), lambda s: s.lower().startswith("ec2")))
    for path, test in checks:
        try:
            if test(path.read_text().strip()):
                return True
        except OSError:
            continue
    return False


class ImdsClient:
    def __init__(self, config: ImdsConfig) -> None:
        self._base = config.endpoint.rstrip("/")
        self._timeout = config.timeout
        self._session = requests.Session()
        self._token = ""

    def _get(self, path: str) -> str:
        response = self._session.get(f"{self._base}/latest/{path}", timeout=self._timeout,
                                     headers={"X-aws-ec2-metadata-token": self._token})
        response.raise_for_status()
        return response.text.strip()

    def _optional(self, path: str) -> str:
        """A category not every interface has (404): empty."""
        response = self._session.get(f"{self._base}/latest/{path}", timeout=self._timeout,
                                     headers={"X-aws-ec2-metadata-token": self._token})
        if response.status_code == 404:
            return ""
        response.raise_for_status()
        return response.text.strip()

    def _networks(self, macs: list[str]) -> tuple[str, tuple[str, ...]]:
        """The VPC and the subnet blocks of the instance's interfaces (traffic by peer:
        these subnets are in this instance's zone, whatever else is known)."""
        vpc, cidrs = "", []
        for mac in macs:
            base = f"meta-data/network/interfaces/macs/{mac}/"
            vpc = vpc or self._optional(base + "vpc-id")
            for path in ("subnet-ipv4-cidr-block", "subnet-ipv6-cidr-blocks"):
                cidrs += [c for c in self._optional(base + path).split() if c not in cidrs]
        return vpc, tuple(cidrs)

    def fetch(self) -> InstanceMetadata:
        """All metadata the agent uses; raises requests.RequestException on failure."""
        response = self._session.put(f"{self._base}/latest/api/token", timeout=self._timeout,
                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": _TOKEN_TTL})
        response.raise_for_status()
        self._token = response.text.strip()
        macs = [m.strip("/") for m in self._get("meta-data/network/interfaces/macs/").split()]
        enis = {mac.lower(): self._get(f"meta-data/network/interfaces/macs/{mac}/interface-id")
                for mac in macs if mac}
        identity = self._session.get(f"{self._base}/latest/dynamic/instance-identity/document",
                                     timeout=self._timeout,
                                     headers={"X-aws-ec2-metadata-token": self._token})
        account = identity.json().get("accountId", "") if identity.ok else ""
        vpc, subnets = self._networks([m for m in macs if m])
        return InstanceMetadata(
            instance_id=self._get("meta-data/instance-id"),
            instance_type=self._get("meta-data/instance-type"),
            availability_zone=self._get("meta-data/placement/availability-zone"),
            region=self._get("meta-data/placement/region"),
            account_id=account, eni_by_mac=enis, vpc_id=vpc, subnet_cidrs=subnets)

    def close(self) -> None:
        self._session.close()


def load_metadata(config: ImdsConfig, sys_root: str) -> tuple[InstanceMetadata, str]:
    """Metadata and a one-line status for the capability report; never raises."""
    if config.enabled is False:
        return InstanceMetadata(), "disabled in configuration"
    if config.enabled is None and not looks_like_ec2(sys_root):
        return InstanceMetadata(), "not an EC2 instance (no EC2 DMI/hypervisor evidence in sysfs)"
    client = ImdsClient(config)
    try:
        meta = client.fetch()
    except (requests.RequestException, ValueError) as exc:
        level = logging.WARNING if config.enabled else logging.INFO
        log.log(level, "IMDS at %s unreachable: %s", config.endpoint, exc)
        return InstanceMetadata(), f"IMDS at {config.endpoint} unreachable: {type(exc).__name__}"
    finally:
        client.close()
    return meta, f"instance {meta.instance_id} ({meta.instance_type}, {meta.availability_zone})"
