"""IMDSv2 metadata: token flow, caching into resource attributes, quiet failure off EC2."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import load_metadata, looks_like_ec2
from otel_netreceiver.config.loader import defaults
from otel_netreceiver.config.schema import ImdsConfig
from otel_netreceiver.resource import build_resource
from tests.support.imds_double import ImdsDouble

RECORDING = Path(__file__).parent.parent / "data" / "imds" / "aws-doc-example.json"


@pytest.fixture
def imds():
    double = ImdsDouble(RECORDING)
    yield double
    double.close()


def test_imdsv2_metadata_and_eni_map(imds) -> None:
    meta, status = load_metadata(ImdsConfig(enabled=True, endpoint=imds.endpoint), "/nonexistent")
    assert meta.instance_id == "i-1234567890abcdef0"
    assert meta.region == "us-west-2" and meta.availability_zone == "us-west-2b"
    assert meta.account_id == "123456789012"
    assert meta.eni_by_mac == {"0e:49:61:0f:c3:11": "eni-0f95d3625f5c521cc",
                               "0e:49:61:0f:c3:22": "eni-0b3f4d1c2a9e8f7d6"}
    # the VPC and this instance's subnets (both families); the interface without them is skipped
    assert meta.vpc_id == "vpc-0e9801d129EXAMPLE"
    assert meta.subnet_cidrs == ("10.158.112.0/20", "2600:1f14:abc:7c00::/64")
    assert imds.requests[0] == ("PUT", "/latest/api/token")  # token first: IMDSv2
    assert "i-1234567890abcdef0" in status


def test_resource_attributes_follow_semantic_conventions(imds) -> None:
    meta, _ = load_metadata(ImdsConfig(enabled=True, endpoint=imds.endpoint), "/nonexistent")
    env = {"K8S_NODE_NAME": "ip-10-158-112-84.us-west-2.compute.internal",
           "OTEL_RESOURCE_ATTRIBUTES": "k8s.cluster.name=prod"}
    resource = build_resource(defaults(env).config, env, meta)
    assert resource["service.instance.id"] == env["K8S_NODE_NAME"]
    assert resource["k8s.node.name"] == env["K8S_NODE_NAME"]
    assert resource["cloud.provider"] == "aws" and resource["cloud.platform"] == "aws_ec2"
    assert resource["host.id"] == "i-1234567890abcdef0" and resource["host.type"] == "t2.micro"
    assert resource["k8s.cluster.name"] == "prod"


def test_auto_mode_does_not_touch_the_network_off_ec2(imds, tmp_path) -> None:
    meta, status = load_metadata(ImdsConfig(enabled=None, endpoint=imds.endpoint), str(tmp_path))
    assert meta.instance_id == "" and "not an EC2 instance" in status
    assert imds.requests == []


def test_auto_mode_queries_when_sysfs_says_ec2(imds, tmp_path) -> None:
    dmi = tmp_path / "devices" / "virtual" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("Amazon EC2\n")
    assert looks_like_ec2(str(tmp_path))
    meta, _ = load_metadata(ImdsConfig(enabled=None, endpoint=imds.endpoint), str(tmp_path))
    assert meta.instance_id == "i-1234567890abcdef0"


def test_unreachable_imds_is_a_status_not_an_error(imds) -> None:
    imds.close()
    meta, status = load_metadata(ImdsConfig(enabled=True, endpoint=imds.endpoint, timeout=0.3),
                                 "/nonexistent")
    assert meta.instance_id == "" and "unreachable" in status
