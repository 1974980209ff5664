"""A tiny application using the otel-netreceiver SDK, for tests/e2e/test_deploy_queries.py.

Run as `python -m tests.support.sdk_traffic_app OTLP_METRICS_URL DNS_ADDRESS ROUNDS` inside
a private mount namespace whose /etc/resolv.conf names DNS_ADDRESS (a loopback address) with
`options timeout:1 attempts:1`. It instruments itself with NetReceiverInstrumentor and the
OpenTelemetry SDK's OTLP/HTTP metric exporter, then, each round: resolves `localhost`
(answered from /etc/hosts), resolves a name that a silent DNS server on DNS_ADDRESS never
answers (error.type timeout: the packets were lost), connects to a closed port
(ECONNREFUSED), reads from a connection the server resets (ECONNRESET) and from one that
never answers (the application's own socket timeout). All of it on loopback. Resource
attributes come from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES as in a pod
(docs/deploy.md). Prints "done" after the last export.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
import time

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from otel_netreceiver_sdk import NetReceiverInstrumentor


def _silent_dns(address: str) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((address, 53))

    def swallow() -> None:
        while True:
            try:
                server.recvfrom(4096)
            except OSError:
                return
    threading.Thread(target=swallow, daemon=True).start()
    return server


def _resetting_server() -> tuple[socket.socket, int]:
    """Accepts, waits for a byte, closes with SO_LINGER 0: the client's read gets a RST."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connect() is refused
    return port


def _round(dns_name: str, reset_port: int, silent_port: int, closed_port: int) -> None:
    socket.getaddrinfo("localhost", 80)
    with contextlib.suppress(socket.gaierror):
        socket.getaddrinfo(dns_name, 80, socket.AF_INET)
    for port, read in ((closed_port, False), (reset_port, True), (silent_port, True)):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3) as conn:
                if read:
                    conn.sendall(b"x")
                    conn.recv(1)
                    conn.recv(1)
        except OSError:
            pass


def main(url: str, dns_address: str, rounds: int) -> None:
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=url),
                                           export_interval_millis=1000)
    provider = MeterProvider(resource=Resource.create(), metric_readers=[reader])
    dns = _silent_dns(dns_address)
    resetter, reset_port = _resetting_server()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (in the kernel) and never answers: reads time out
    closed = _closed_port()
    NetReceiverInstrumentor().instrument(meter_provider=provider)
    try:
        for _ in range(rounds):
            _round("lost.deploy-e2e.test", reset_port, silent.getsockname()[1], closed)
            time.sleep(0.5)
    finally:
        NetReceiverInstrumentor().uninstrument()
        provider.shutdown()  # the last export
        for sock in (dns, resetter, silent):
            sock.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
