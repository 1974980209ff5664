"""Remote diagnose against AMP with botocore's credential chain, on loopback doubles.

Web identity (IRSA: a token file exchanged at a local STS double) and container
credentials (EKS Pod Identity: a local endpoint with an authorization token
file): every query the CLI sends must carry a SigV4 signature that botocore's
own signer reproduces from the issued secret; rotated credentials are used
without a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_netreceiver.diagnosis.aws_credentials import default_source
from otel_netreceiver.diagnosis.remote import QueryClient
from tests.support.aws_doubles import (
    REGION,
    ContainerCredentialsDouble,
    SigningQueryApi,
    StsDouble,
)

botocore_session = pytest.importorskip("botocore.session")
ROOT = Path(__file__).parent.parent.parent
# nothing from the machine: no config files, no instance metadata, no static keys
ISOLATED = {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": REGION}


def _diagnose(api: SigningQueryApi, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_netreceiver", "diagnose", "--prometheus", api.url,
         "--sigv4-region", REGION, "--since", "30m", "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": "/nonexistent",
             **ISOLATED, **env})


@pytest.fixture
def sts():  # type: ignore[no-untyped-def]
    double = StsDouble()
    yield double
    double.close()


def test_web_identity_credentials_from_a_local_sts_sign_every_query(sts, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("eyJ-service-account-token")
    api = SigningQueryApi(sts)
    try:
        done = _diagnose(api, {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/amp-reader",
                               "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
                               "AWS_ENDPOINT_URL_STS": sts.url})
    finally:
        api.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["source"] == api.url
    assert api.rejected == []
    assert api.keys_seen and set(api.keys_seen) == {"ASIASTS0001"}
    assert sts.tokens and set(sts.tokens) == {"eyJ-service-account-token"}


def test_container_credentials_from_a_local_endpoint_sign_every_query(tmp_path) -> None:
    token = tmp_path / "pod-identity-token"
    token.write_text("pod-identity-secret-token")
    pod = ContainerCredentialsDouble("pod-identity-secret-token")
    api = SigningQueryApi(pod)
    try:
        done = _diagnose(api, {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{pod.url}/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token)})
    finally:
        api.close()
        pod.close()
    assert done.returncode == 0, done.stderr
    assert api.rejected == [] and set(api.keys_seen) == {"ASIAPOD0001"}


def test_rotated_credentials_are_used_without_a_restart(monkeypatch, tmp_path) -> None:
    token = tmp_path / "pod-identity-token"
    token.write_text("t0")
    pod = ContainerCredentialsDouble("t0")
    api = SigningQueryApi(pod)
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    for var, value in {**ISOLATED, "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{pod.url}/creds",
                       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token)}.items():
        monkeypatch.setenv(var, value)
    try:
        client = QueryClient(api.url, region=REGION,
                             credentials=default_source({}, botocore_session.Session()))
        client.query("up", 1.7e9)
        pod.rotate()
        client.query("up", 1.7e9)
    finally:
        api.close()
        pod.close()
    assert api.rejected == []
    assert api.keys_seen == ["ASIAPOD0001", "ASIAPOD0002"]


def test_no_credentials_anywhere_is_named(tmp_path) -> None:
    api = SigningQueryApi()
    try:
        done = _diagnose(api, {})
    finally:
        api.close()
    assert done.returncode == 2
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in done.stderr
    assert "web identity" in done.stderr and api.keys_seen == []
