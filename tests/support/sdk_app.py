"""An application using the SDK, driven line by line: run it inside a test pod.

`python sdk_app.py` (under `ip netns exec POD`, its pid moved into the pod's cgroup by the
test) instruments itself with `NetReceiverInstrumentor().instrument()`, configured only by
the environment a pod would have (OTEL_NETRECEIVER_AGENT_SOCKET or _ENDPOINT, the Downward
API's K8S_* variables), prints `{"ready": PID}`, then reads one JSON command per line and
prints one JSON result per line. Every operation is a real call the wrappers see:
getaddrinfo through the pod's resolv.conf, UDP and TCP sockets on the pod's address. A
failing call is answered with what `explain(exc)` returns and the span events the SDK
added, so the test sees exactly what an application would.

Commands: `lookup` (name), `ask` (signal, error_type, transport, phase: an explicit
question through the SDK's own client), `udp_bind` (host, port, rcvbuf), `udp_drain`
(seconds: read until the socket times out), `tcp_request` (host, port: send a request,
wait for the answer), `metrics` (the SDK's socket error counter), `quit`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import time
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_netreceiver_sdk import NetReceiverInstrumentor, explain, installed_reporter
from otel_netreceiver_sdk.client import CorrelationRequest


class App:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer = provider.get_tracer("e2e-app")
        self.reader = InMemoryMetricReader()
        NetReceiverInstrumentor().instrument(meter_provider=MeterProvider(
            metric_readers=[self.reader]))
        self.udp: socket.socket | None = None

    def failed(self, exc: BaseException, started: float) -> dict[str, Any]:
        """What the application can know about a failure: explain() and the span event."""
        e = explain(exc)
        events = [dict(ev.attributes or {}) for span in self.spans.get_finished_spans()
                  for ev in span.events if ev.name == "netreceiver.correlation"]
        self.spans.clear()
        return {"ok": False, "error": repr(exc), "seconds": time.monotonic() - started,
                "explanation": dataclasses.asdict(e), "events": events}

    def lookup(self, name: str) -> dict[str, Any]:
        started = time.monotonic()
        with self.tracer.start_as_current_span("lookup"):
            try:
                infos = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)
            except OSError as exc:
                failure = exc
            else:
                return {"ok": True, "addresses": sorted({i[4][0] for i in infos}),
                        "seconds": time.monotonic() - started}
        return self.failed(failure, started)

    def ask(self, signal: str, error_type: str, transport: str, phase: str) -> dict[str, Any]:
        reporter = installed_reporter()
        assert reporter is not None
        result = reporter.client.correlate(CorrelationRequest(
            signal, error_type, transport, phase, time.time_ns(), reporter.config.window_s))
        return {"ok": True, "status": result.status, "detail": result.detail,
                "answer": dataclasses.asdict(result.answer) if result.answer else None}

    def udp_bind(self, host: str, port: int, rcvbuf: int) -> dict[str, Any]:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.udp.bind((host, port))
        return {"ok": True, "rcvbuf": self.udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}

    def udp_drain(self, seconds: float) -> dict[str, Any]:
        """Read what the buffer kept; the read after the last datagram times out."""
        assert self.udp is not None
        self.udp.settimeout(seconds)
        received, started = 0, time.monotonic()
        with self.tracer.start_as_current_span("receive"):
            try:
                while True:
                    self.udp.recvfrom(65536)
                    received += 1
                    started = time.monotonic()
            except OSError as exc:
                failure = exc
        return self.failed(failure, started) | {"received": received}

    def tcp_request(self, host: str, port: int) -> dict[str, Any]:
        started = time.monotonic()
        with self.tracer.start_as_current_span("request"):
            try:
                with socket.create_connection((host, port), timeout=5) as conn:
                    conn.sendall(b"GET /orders HTTP/1.1\r\nHost: orders\r\n\r\n")
                    data = conn.recv(4096)
            except OSError as exc:
                failure = exc
            else:
                return {"ok": True, "data": data.decode(errors="replace")}
        return self.failed(failure, started)

    def metrics(self) -> dict[str, Any]:
        points = []
        for rm in self.reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    points += [{"name": metric.name, "attributes": dict(p.attributes),
                                "value": getattr(p, "value", getattr(p, "count", None))}
                               for p in metric.data.data_points]
        return {"ok": True, "points": points}


def main() -> None:
    app = App()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        if op == "quit":
            break
        print(json.dumps(getattr(app, op)(**command), default=str), flush=True)


if __name__ == "__main__":
    main()
