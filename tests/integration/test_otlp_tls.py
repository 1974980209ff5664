"""TLS and mTLS exports to real TLS endpoints on loopback, with a CA made in the test.

HTTP (a TLS-wrapped OTLP sink) and gRPC (a gRPC server with SSL credentials), for
metrics and logs; the wrong CA fails with a message naming the endpoint and the
certificate problem, without retrying until the deadline; bad files fail when the
exporter is built, naming the file.
"""

from __future__ import annotations

import time

import pytest

from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.otlp_logs import OtlpLogsExporter
from otel_netreceiver.export.otlp import OtlpExporter
from otel_netreceiver.export.settings import resolve
from otel_netreceiver.export.transport import TlsConfigError
from otel_netreceiver.model import Collection, Kind, MetricDef, Point, attrs
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.otlp_sink import OtlpGrpcSink, OtlpHttpSink, log_records
from tests.support.tls import Pki, make_pki

PKTS = MetricDef("t.packets", Kind.COUNTER, "{packet}", "packets")
RESOURCE = {"service.name": "otel-netreceiver", "service.instance.id": "node-1"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    try:
        return make_pki(tmp_path_factory.mktemp("pki"))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def _snapshot():  # type: ignore[no-untyped-def]
    store = SeriesStore()
    store.update(Collection("c", (Point(PKTS, attrs(i="eth0"), 3),), time.time_ns()))
    return store.snapshot()


def _export(config: OtlpConfig):  # type: ignore[no-untyped-def]
    exporter = OtlpExporter(config, RESOURCE)
    try:
        return exporter.export(_snapshot())
    finally:
        exporter.shutdown()


@pytest.fixture
def https_sink(pki: Pki):  # type: ignore[no-untyped-def]
    sink = OtlpHttpSink(tls=pki.server_context())
    yield sink
    sink.close()


@pytest.fixture
def mtls_sink(pki: Pki):  # type: ignore[no-untyped-def]
    sink = OtlpHttpSink(tls=pki.server_context(require_client_cert=True))
    yield sink
    sink.close()


def test_https_export_verified_by_the_test_ca(pki: Pki, https_sink) -> None:
    result = _export(OtlpConfig(endpoint=https_sink.endpoint, certificate=str(pki.ca)))
    assert result.ok, result.error
    assert https_sink.latest_values() == {("t.packets", (("i", "eth0"),)): 3}


def test_https_with_the_wrong_ca_fails_naming_endpoint_and_problem(pki: Pki, https_sink) -> None:
    result = _export(OtlpConfig(endpoint=https_sink.endpoint, certificate=str(pki.wrong_ca),
                                timeout=5.0))
    assert not result.ok
    assert https_sink.endpoint + "/v1/metrics" in result.error
    assert "certificate verify failed" in result.error
    assert https_sink.requests == []


def test_mtls_export_with_the_client_certificate(pki: Pki, mtls_sink) -> None:
    result = _export(OtlpConfig(endpoint=mtls_sink.endpoint, certificate=str(pki.ca),
                                client_certificate=str(pki.client_cert),
                                client_key=str(pki.client_key)))
    assert result.ok, result.error
    assert len(mtls_sink.requests) == 1


def test_mtls_endpoint_refuses_an_agent_without_a_client_certificate(pki: Pki, mtls_sink) -> None:
    result = _export(OtlpConfig(endpoint=mtls_sink.endpoint, certificate=str(pki.ca),
                                timeout=1.0))
    assert not result.ok and mtls_sink.requests == []
    assert mtls_sink.endpoint in result.error and "no client certificate" in result.error


def test_tls_settings_from_signal_specific_variables_for_logs(pki: Pki, mtls_sink) -> None:
    env = {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": mtls_sink.endpoint + "/v1/logs",
           "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE": str(pki.ca),
           "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE": str(pki.client_cert),
           "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY": str(pki.client_key)}
    exporter = OtlpLogsExporter(resolve(OtlpConfig(), "logs", env=env), RESOURCE)
    event = Event("TCP_SEND_RST", 9, "INFO", time.time_ns(), 0, (), None, None, "", "", (), ())
    try:
        assert exporter.export([event], 5.0) == ""
    finally:
        exporter.close()
    assert [r.attributes[0].value.string_value
            for r in log_records(mtls_sink.log_requests[0])] == ["TCP_SEND_RST"]


@pytest.mark.parametrize("mutual", [False, True])
def test_grpc_endpoint_without_scheme_uses_tls(pki: Pki, mutual: bool) -> None:
    sink = OtlpGrpcSink(credentials=pki.grpc_server_credentials(require_client_cert=mutual))
    client = ({"client_certificate": str(pki.client_cert), "client_key": str(pki.client_key)}
              if mutual else {})
    try:
        result = _export(OtlpConfig(endpoint=f"127.0.0.1:{sink.port}", protocol="grpc",
                                    certificate=str(pki.ca), **client))
    finally:
        sink.close()
    assert result.ok, result.error
    assert sink.requests[0].resource_metrics[0].scope_metrics[0].metrics[0].name == "t.packets"


def test_grpc_with_the_wrong_ca_fails_naming_target_and_problem(pki: Pki) -> None:
    sink = OtlpGrpcSink(credentials=pki.grpc_server_credentials())
    try:
        result = _export(OtlpConfig(endpoint=f"https://127.0.0.1:{sink.port}", protocol="grpc",
                                    certificate=str(pki.wrong_ca), timeout=3.0))
    finally:
        sink.close()
    assert not result.ok and sink.requests == []
    assert f"127.0.0.1:{sink.port}" in result.error
    assert "TLS" in result.error and "certificate" in result.error.lower()


@pytest.mark.parametrize(("protocol", "files", "fragment"), [
    ("http/protobuf", {"certificate": "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"),
    ("grpc", {"certificate": "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"),
    ("http/protobuf", {"client_certificate": "CERT"}, "needs both"),
])
def test_unusable_certificate_files_fail_when_built(pki: Pki, protocol: str, files: dict,
                                                    fragment: str) -> None:
    files = {k: str(pki.client_cert) if v == "CERT" else v for k, v in files.items()}
    with pytest.raises(TlsConfigError, match=fragment):
        OtlpExporter(OtlpConfig(endpoint="https://127.0.0.1:1", protocol=protocol, **files),
                     RESOURCE)


def test_a_key_that_is_not_pem_names_the_files(pki: Pki, tmp_path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    with pytest.raises(TlsConfigError, match="not usable PEM"):
        OtlpExporter(OtlpConfig(endpoint="https://127.0.0.1:1", client_key=str(bad),
                                client_certificate=str(pki.client_cert)), RESOURCE)
