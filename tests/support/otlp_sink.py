"""A real OTLP receiver for tests: HTTP/protobuf and gRPC, on 127.0.0.1.

It speaks the wire protocol (gzip, protobuf, the gRPC MetricsService), so
the agent's exporters are exercised exactly as against a collector; it can be
told to answer with an HTTP status (to test retries and outages).
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


def values_of(request: ExportMetricsServiceRequest) -> dict[tuple[str, tuple], float]:
    """(metric name, sorted attributes) → value, for sums and gauges of a request."""
    out: dict[tuple[str, tuple], float] = {}
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points = m.sum.data_points if m.HasField("sum") else m.gauge.data_points
                for dp in points:
                    key = tuple(sorted((kv.key, kv.value.string_value) for kv in dp.attributes))
                    value = dp.as_int if dp.WhichOneof("value") == "as_int" else dp.as_double
                    out[(m.name, key)] = value
    return out


def starts_of(request: ExportMetricsServiceRequest) -> dict[tuple[str, tuple], tuple[int, int]]:
    """(metric name, sorted attributes) → (start, time) in unix ns, for cumulative sums."""
    out: dict[tuple[str, tuple], tuple[int, int]] = {}
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.HasField("sum"):
                    for dp in m.sum.data_points:
                        key = tuple(sorted((kv.key, kv.value.string_value)
                                           for kv in dp.attributes))
                        out[(m.name, key)] = (dp.start_time_unix_nano, dp.time_unix_nano)
    return out


def resource_of(request: ExportMetricsServiceRequest) -> dict[str, str]:
    rm = request.resource_metrics[0]
    return {kv.key: kv.value.string_value for kv in rm.resource.attributes}


def log_records(request: ExportLogsServiceRequest) -> list:
    """Every LogRecord of a logs request, in order."""
    return [lr for rl in request.resource_logs for sl in rl.scope_logs for lr in sl.log_records]


class OtlpHttpSink:
    """Collects ExportMetricsServiceRequests posted to /v1/metrics, logs posted to /v1/logs."""

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: serve HTTPS with this server context (tests/support/tls.py)."""
        self.requests: list[ExportMetricsServiceRequest] = []
        self.log_requests: list[ExportLogsServiceRequest] = []
        self.status = 200
        self.delay = 0.0  # seconds to wait before answering (a slow backend)
        self.received = threading.Event()
        self.attempts = 0
        # answers to give first, in order: (status, headers), e.g. (429, {"Retry-After": "0"})
        self.script: list[tuple[int, dict[str, str]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.attempts += 1
                if sink.script:
                    status, headers = sink.script.pop(0)
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if sink.delay:
                    time.sleep(sink.delay)
                if sink.status != 200:
                    self.send_response(sink.status)
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.endswith("/v1/logs"):
                    sink.log_requests.append(ExportLogsServiceRequest.FromString(body))
                    data = ExportLogsServiceResponse().SerializeToString()
                else:
                    sink.requests.append(ExportMetricsServiceRequest.FromString(body))
                    sink.received.set()
                    data = ExportMetricsServiceResponse().SerializeToString()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a slow-backend test): nothing to answer

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._scheme = "https" if tls is not None else "http"
        if tls is not None:  # the handshake runs on accept; a failed one drops that client
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def latest_values(self) -> dict[tuple[str, tuple], float]:
        return values_of(self.requests[-1]) if self.requests else {}

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.requests and predicate(self.latest_values()):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()



class _GrpcSink:
    """A real gRPC server on 127.0.0.1 for one OTLP service (metrics or logs).

    ``script``: failures to answer first, in order, as (status code name, RetryInfo
    delay in seconds or None). ``credentials``: grpc.ssl_server_credentials for TLS.
    """

    attempts = 0
    script: list[tuple[str, float | None]]

    def _serve(self, add_servicer, servicer, credentials=None) -> None:  # type: ignore[no-untyped-def]
        import grpc

        self.script = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        add_servicer(servicer, self._server)
        if credentials is None:
            self.port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self._server.start()

    def _answer_scripted(self, context) -> None:  # type: ignore[no-untyped-def]
        """Count the attempt; abort it as the script says, if anything is left in it."""
        import grpc
        from google.protobuf.duration_pb2 import Duration
        from google.rpc.error_details_pb2 import RetryInfo

        self.attempts += 1
        if not self.script:
            return
        code, delay = self.script.pop(0)
        if delay is not None:
            info = RetryInfo(retry_delay=Duration(seconds=int(delay),
                                                  nanos=int((delay % 1) * 1e9)))
            context.set_trailing_metadata((("google.rpc.retryinfo-bin",
                                            info.SerializeToString()),))
        context.abort(grpc.StatusCode[code], f"scripted {code}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.stop(grace=None)


class OtlpGrpcSink(_GrpcSink):
    """The same, as a gRPC MetricsService server."""

    def __init__(self, credentials=None) -> None:  # type: ignore[no-untyped-def]
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as svc

        self.requests: list[ExportMetricsServiceRequest] = []
        self.metadata: list[dict[str, str]] = []
        sink = self

        class Servicer(svc.MetricsServiceServicer):
            def Export(self, request, context):  # type: ignore[no-untyped-def]
                sink._answer_scripted(context)
                sink.requests.append(request)
                sink.metadata.append(dict(context.invocation_metadata()))
                return ExportMetricsServiceResponse()

        self._serve(svc.add_MetricsServiceServicer_to_server, Servicer(), credentials)


class OtlpGrpcLogsSink(_GrpcSink):
    """A gRPC LogsService server collecting ExportLogsServiceRequests."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as svc

        self.log_requests: list[ExportLogsServiceRequest] = []
        sink = self

        class Servicer(svc.LogsServiceServicer):
            def Export(self, request, context):  # type: ignore[no-untyped-def]
                sink.log_requests.append(request)
                return ExportLogsServiceResponse()

        self._serve(svc.add_LogsServiceServicer_to_server, Servicer())
