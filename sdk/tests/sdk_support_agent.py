"""A fake node agent: a real HTTP server on a real Unix socket and TCP port.

It speaks docs/node-api.md's POST /v1/correlate and can misbehave on demand: answer slowly,
trickle its answer byte by byte, answer 500, 429 or garbage. The real agent is tested
with the SDK by the agent's own tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

THROTTLED = {
    "node": "ip-10-0-1-23.ec2.internal",
    "caller": {"kind": "pod", "k8s.pod.uid": "u-1", "k8s.pod.name": "web-1",
               "k8s.namespace.name": "shop"},
    "window": {"start_unix_nano": 1, "end_unix_nano": 2, "seconds": 30.0},
    "verdict": "dns_throttled_at_eni",
    "findings": [{
        "rule": "dns.eni_linklocal", "verdict": "dns_throttled_at_eni",
        "severity": "critical", "summary": "the ENI dropped 120 link-local packets",
        "advice": "use NodeLocal DNSCache",
        "evidence": [{"signal": "aws.ena.allowance.exceeded",
                      "attributes": {"aws.ena.allowance": "linklocal",
                                     "network.interface.name": "eth0"},
                      "scope": "node", "delta": 120, "window_seconds": 30.0}]}],
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def address_string(self) -> str:  # a Unix peer has no (host, port)
        return "unix" if isinstance(self.client_address, (str, bytes)) else \
            super().address_string()

    def do_GET(self) -> None:
        payload = b'{"status": "ok", "node": "ip-10-0-1-23.ec2.internal"}'
        self.send_response(200 if self.path == "/v1/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        agent: FakeAgent = self.server.agent  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        agent.requests.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
        # The client may give up first (its deadline): what the slow modes test.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            agent.behave(self)


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class _TcpServer(ThreadingHTTPServer):
    daemon_threads = True


class FakeAgent:
    """Both transports at once; `mode` selects the behaviour of the next requests."""

    def __init__(self, socket_path: Path) -> None:
        self.mode, self.answer, self.delay = "ok", THROTTLED, 0.0
        self.requests: list[tuple[str, str | None, dict]] = []
        self.socket_path = socket_path
        self._servers = [_UnixServer(str(socket_path), _Handler),
                         _TcpServer(("127.0.0.1", 0), _Handler)]
        for server in self._servers:
            server.agent = self  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def tcp_port(self) -> int:
        return self._servers[1].server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.tcp_port}"

    def behave(self, handler: BaseHTTPRequestHandler) -> None:
        if self.mode == "slow":
            time.sleep(self.delay)
        payload, status, headers = json.dumps(self.answer).encode(), 200, {}
        if self.mode == "error500":
            payload, status = b'{"error": "boom"}', 500
        elif self.mode == "garbage":
            payload = b"<html>not json"
        elif self.mode == "wrong_shape":
            payload = json.dumps({"verdict": 3, "findings": []}).encode()
        elif self.mode == "throttle":
            payload, status, headers = b'{"error": "rate"}', 429, {"Retry-After": "7"}
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if self.mode == "trickle":
            for byte in payload:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(0.02)
        else:
            handler.wfile.write(payload)

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        if self.socket_path.exists():
            os.unlink(self.socket_path)
