"""OTLP transports (HTTP/protobuf and gRPC) with TLS and mTLS, shared by metrics and logs.

A transport sends bytes that are already encoded and turns every failure into
the retry module's RetryableError (with the server's delay, if any) or
PermanentError, whose message names the endpoint and the problem. Certificate
files are read when the transport is built, so a missing or malformed file is a
clear error at start or reload, not a failed export every interval. A TLS
verification failure is permanent: the same certificate fails again, and
retrying would only hide the reason until the deadline.
"""

from __future__ import annotations

import gzip
import ssl
import time
from pathlib import Path
from typing import Any

import requests

from otel_netreceiver import __version__
from otel_netreceiver.export.retry import (
    PermanentError,
    RetryableError,
    grpc_decision,
    http_decision,
)
from otel_netreceiver.export.settings import ExporterSettings, TlsSettings

USER_AGENT = f"otel-netreceiver/{__version__}"
METRICS_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


class TlsConfigError(ValueError):
    """A certificate or key file that cannot be used; the message names the file."""


def _read(path: str, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{what} {path}: {exc.strerror or exc}") from exc


def check_tls_files(tls: TlsSettings) -> None:
    """Load the files into an ssl.SSLContext once, so bad ones fail here with their name."""
    if bool(tls.client_key) != bool(tls.client_certificate):
        raise TlsConfigError("mTLS needs both client_certificate and client_key "
                             f"(got certificate={tls.client_certificate!r}, "
                             f"key={tls.client_key!r})")
    context = ssl.create_default_context()
    try:
        if tls.certificate:
            _read(tls.certificate, "certificate")
            context.load_verify_locations(cafile=tls.certificate)
        if tls.client_certificate:
            _read(tls.client_certificate, "client_certificate")
            _read(tls.client_key, "client_key")
            context.load_cert_chain(tls.client_certificate, tls.client_key)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"certificate files {tls}: not usable PEM: {exc.reason or exc}") \
            from exc


def _tls_reason(exc: BaseException) -> str:
    """The innermost SSL reason of a requests error (e.g. 'certificate verify failed: ...')."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {seen.verify_message}"
        if isinstance(seen, ssl.SSLError):
            return str(seen.reason or seen)
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, BaseException):
                return _tls_reason(arg)
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else seen.__cause__ or seen.__context__
    return str(exc)


class HttpTransport:
    """OTLP/HTTP with a binary protobuf body; TLS by the URL's scheme."""

    def __init__(self, settings: ExporterSettings) -> None:
        check_tls_files(settings.tls)
        self.url = settings.url
        self._gzip = settings.compression == "gzip"
        self._headers = {"Content-Type": "application/x-protobuf", "User-Agent": USER_AGENT,
                         **dict(settings.headers)}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._session = requests.Session()
        tls = settings.tls
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE replace a
        # session's verify, and the configured CA must win over the process environment.
        self._verify: str | bool = tls.certificate or True
        self._cert = (tls.client_certificate, tls.client_key) if tls.client_certificate else None

    def send(self, body: bytes, timeout: float) -> None:
        data = gzip.compress(body, compresslevel=5) if self._gzip else body
        try:
            response = self._session.post(self.url, data=data, headers=self._headers,
                                          timeout=timeout, verify=self._verify, cert=self._cert)
        except requests.exceptions.SSLError as exc:
            reason = _tls_reason(exc)
            if self._cert is None and "verify failed" not in reason:
                reason += " (no client certificate configured: does the server require mTLS?)"
            raise PermanentError(f"{self.url}: TLS: {reason}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RetryableError(f"{self.url}: {type(exc).__name__}") from exc
        if response.status_code < 300:
            return
        decision = http_decision(response.status_code, response.headers, time.time())
        if decision.retry:
            raise RetryableError(f"{self.url}: HTTP {response.status_code}", decision.delay)
        raise PermanentError(f"{self.url}: HTTP {response.status_code}: {response.text[:200]}")

    def close(self) -> None:
        self._session.close()


def _grpc_credentials(grpc: Any, tls: TlsSettings) -> Any:
    check_tls_files(tls)
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.certificate, "certificate"),
        private_key=_read(tls.client_key, "client_key"),
        certificate_chain=_read(tls.client_certificate, "client_certificate"))


class GrpcTransport:
    """OTLP/gRPC: the encoded request sent as it is to the service's Export method."""

    def __init__(self, settings: ExporterSettings, method: str = METRICS_METHOD) -> None:
        try:
            import grpc
        except ImportError as exc:
            raise ImportError("exporters.otlp.protocol grpc needs the grpc extra: "
                              "pip install 'otel-netreceiver[grpc]'") from exc

        self.url = settings.url
        self._grpc = grpc
        if settings.secure:
            self._channel = grpc.secure_channel(settings.url,
                                                _grpc_credentials(grpc, settings.tls))
        else:
            self._channel = grpc.insecure_channel(settings.url)
        # Both services answer an empty-or-partial-success message we do not need to read.
        self._export = self._channel.unary_unary(method, request_serializer=lambda b: b,
                                                 response_deserializer=lambda b: b)
        self._metadata = tuple((k.lower(), v) for k, v in settings.headers)
        self._compression = grpc.Compression.Gzip if settings.compression == "gzip" else None

    def send(self, body: bytes, timeout: float) -> None:
        try:
            self._export(body, timeout=timeout, metadata=self._metadata,
                         compression=self._compression)
        except self._grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""  # type: ignore[attr-defined]
            where = f"{self.url}: gRPC {code.name}"
            if "certificate" in details.lower() or "handshake" in details.lower():
                raise PermanentError(f"{where}: TLS: {details}") from exc
            decision = grpc_decision(code.name, exc.trailing_metadata() or ())  # type: ignore[attr-defined]
            if decision.retry:
                raise RetryableError(where, decision.delay) from exc
            raise PermanentError(f"{where}: {details}") from exc

    def close(self) -> None:
        self._channel.close()


def build_transport(settings: ExporterSettings, method: str = METRICS_METHOD,
                    ) -> HttpTransport | GrpcTransport:
    """The transport of the settings' protocol (``method``: the gRPC service's Export)."""
    if settings.protocol == "grpc":
        return GrpcTransport(settings, method)
    return HttpTransport(settings)
