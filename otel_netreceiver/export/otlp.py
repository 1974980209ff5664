"""OTLP metrics export over HTTP/protobuf or gRPC, with bounded retries.

One export never takes longer than ``timeout`` (retries included): the export
thread must get back to the next interval, and collection never waits for it
(collectors run in their own threads). A failed export is not queued: the
series are cumulative, so the next successful export carries the totals and
nothing is lost but resolution (docs/background.md, "OTLP into Prometheus and AMP").
Retryable answers follow the OTLP specification: HTTP 429/502/503/504 and gRPC
UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from otel_netreceiver import __version__
from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.export.base import ExportResult
from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.model import Snapshot

log = logging.getLogger(__name__)

_RETRYABLE_HTTP = {429, 502, 503, 504}
_USER_AGENT = f"otel-netreceiver/{__version__}"


class RetryableError(Exception):
    """A failure worth another try within the deadline."""


def _with_retries(send: Callable[[float], None], timeout: float) -> None:
    """Call ``send(remaining_seconds)`` until it succeeds or the deadline passes."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        remaining = deadline - time.monotonic()
        try:
            send(max(remaining, 0.05))
            return
        except RetryableError:
            if time.monotonic() + delay >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


class HttpTransport:
    """OTLP/HTTP with a binary protobuf body."""

    def __init__(self, config: OtlpConfig, path: str | None = None) -> None:
        base = config.endpoint.rstrip("/")
        self.url = base + (path if path is not None else config.metrics_path)
        self._gzip = config.compression == "gzip"
        self._headers = {"Content-Type": "application/x-protobuf", "User-Agent": _USER_AGENT,
                         **config.headers}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._session = requests.Session()

    def send(self, body: bytes, timeout: float) -> None:
        data = gzip.compress(body, compresslevel=5) if self._gzip else body
        try:
            response = self._session.post(self.url, data=data, headers=self._headers,
                                          timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RetryableError(f"{self.url}: {type(exc).__name__}") from exc
        if response.status_code in _RETRYABLE_HTTP:
            raise RetryableError(f"{self.url}: HTTP {response.status_code}")
        if response.status_code >= 300:
            raise RuntimeError(f"{self.url}: HTTP {response.status_code}: {response.text[:200]}")

    def close(self) -> None:
        self._session.close()


class GrpcTransport:
    """OTLP/gRPC through the generated MetricsService stub."""

    def __init__(self, config: OtlpConfig, method: str = "", response: Any = None) -> None:
        """``method``/``response``: another OTLP service (the events' LogsService)."""
        import grpc
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceResponse,
        )

        parts = urlsplit(config.endpoint if "://" in config.endpoint else f"http://{config.endpoint}")
        target = parts.netloc or parts.path
        self.url = target
        if parts.scheme == "https":
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials())
        else:
            self._channel = grpc.insecure_channel(target)
        # The request is already encoded (otlp_wire.py): send the bytes as they are.
        self._export = self._channel.unary_unary(
            method or "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            request_serializer=lambda body: body,
            response_deserializer=(response or ExportMetricsServiceResponse).FromString)
        self._metadata = tuple((k.lower(), v) for k, v in config.headers.items())
        self._compression = grpc.Compression.Gzip if config.compression == "gzip" else None
        self._retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                           grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
        self._grpc = grpc

    def send(self, body: bytes, timeout: float) -> None:
        try:
            self._export(body, timeout=timeout, metadata=self._metadata,
                         compression=self._compression)
        except self._grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code in self._retryable:
                raise RetryableError(f"{self.url}: gRPC {code.name}") from exc
            raise RuntimeError(f"{self.url}: gRPC {code.name}: {exc.details()}") from exc  # type: ignore[attr-defined]

    def close(self) -> None:
        self._channel.close()


class OtlpExporter:
    """Encodes a snapshot once and sends it with the configured transport."""

    name = "otlp"

    def __init__(self, config: OtlpConfig, resource: Mapping[str, str]) -> None:
        self._config = config
        self._encoder = WireEncoder(resource)
        self._transport: HttpTransport | GrpcTransport = (
            GrpcTransport(config) if config.protocol == "grpc" else HttpTransport(config))

    @property
    def url(self) -> str:
        return self._transport.url

    def export(self, snapshot: Snapshot) -> ExportResult:
        points = snapshot.point_count()
        try:
            body = self._encoder.encode(snapshot)
            _with_retries(lambda t: self._transport.send(body, t), self._config.timeout)
        except Exception as exc:  # an exporter must never raise into the export loop
            return ExportResult(False, error=str(exc) or type(exc).__name__)
        return ExportResult(True, points, len(body))

    def shutdown(self) -> None:
        self._transport.close()
