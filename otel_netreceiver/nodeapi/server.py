"""The node API's HTTP servers: TCP on the node address, and a Unix socket for pods.

Read-only, small and defensive, because every pod of the node can reach it: bodies over
16 KiB are refused, a client that does not send its request within two seconds is cut
off, at most ``max_connections`` requests are served at once (the rest get 503 at once,
so a flood costs a socket accept, not a thread), and every caller has its own token
bucket. The caller is identified before anything else is read.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from otel_netreceiver.nodeapi.callers import Caller, CallerIdentifier, Refused, peer_credentials
from otel_netreceiver.nodeapi.correlate import BadRequest
from otel_netreceiver.ratelimit import KeyedLimiter

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024
REQUEST_TIMEOUT_S = 2.0


@dataclass
class ApiContext:
    """What the handlers share: identification, limits, the correlator, counters."""

    identify: CallerIdentifier
    limiter: KeyedLimiter
    correlate: Callable[[Any, Caller], dict[str, Any]]
    diagnose: Callable[[dict[str, str]], dict[str, Any]]
    node: str
    slots: threading.BoundedSemaphore
    outcomes: Counter
    lock: threading.Lock
    top: Callable[[], dict[str, Any]] | None = None  # GET /v1/top (otel_netreceiver/top)

    def count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1


class _Handler(BaseHTTPRequestHandler):
    server_version = "otel-netreceiver"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S  # slow clients: socket timeout on every read
    ctx: ApiContext

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("node api: " + format, *args)

    def _caller(self) -> Caller:
        if isinstance(self.client_address, tuple) and self.client_address:
            return self.ctx.identify.from_ip(self.client_address[0])
        return self.ctx.identify.from_pid(*peer_credentials(self.request))

    def _send(self, code: int, body: dict[str, Any], outcome: str,
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.ctx.count(outcome)

    def _admit(self) -> Caller | None:
        try:
            caller = self._caller()
        except Refused as exc:
            self._send(403, {"error": f"unknown caller: {exc}"}, "refused")
            return None
        wait = self.ctx.limiter.wait(caller.key)
        if wait:
            self._send(429, {"error": "rate limited"}, "rate_limited",
                       {"Retry-After": str(max(1, round(wait)))})
            return None
        return caller

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path not in ("/v1/health", "/v1/diagnose", "/v1/top"):
            self._send(404, {"error": f"no such path: {self.path[:100]}"}, "not_found")
            return
        caller = self._admit()
        if caller is None:
            return
        if path == "/v1/health":
            self._send(200, {"status": "ok", "node": self.ctx.node}, "ok")
        elif not caller.admin:  # one pod's numbers are never another pod's business
            what = "diagnosis" if path == "/v1/diagnose" else "top"
            self._send(403, {"error": f"the node's {what} is for the agent's own pod and "
                             "root on the node, over the Unix socket"}, "refused")
        else:
            self._answer(path, query)

    def _answer(self, path: str, query: str) -> None:
        try:
            if path == "/v1/top":
                if self.ctx.top is None:
                    self._send(404, {"error": "top: this agent keeps no rates"}, "not_found")
                    return
                self._send(200, self.ctx.top(), "ok")
                return
            params = {k: v[-1] for k, v in parse_qs(query).items()}
            self._send(200, self.ctx.diagnose(params), "ok")
        except BadRequest as exc:
            self._send(400, {"error": str(exc)}, "bad_request")
        except Exception:
            log.exception("node api: %s failed", path)
            self._send(500, {"error": "internal error (logged by the agent)"}, "error")

    def do_POST(self) -> None:
        if self.path != "/v1/correlate":
            self._send(404, {"error": f"no such path: {self.path[:100]}"}, "not_found")
            return
        caller = self._admit()
        if caller is None:
            return
        body = self._body()
        if body is None:
            return
        try:
            self._send(200, self.ctx.correlate(body, caller), "ok")
        except BadRequest as exc:
            self._send(400, {"error": str(exc)}, "bad_request")
        except Exception:  # a bug must cost one answer, never the listener
            log.exception("node api: correlate failed")
            self._send(500, {"error": "internal error (logged by the agent)"}, "error")

    def _body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(411, {"error": "Content-Length: required"}, "bad_request")
            return None
        if length > MAX_BODY or length < 0:
            self.close_connection = True
            self._send(413, {"error": f"body: larger than {MAX_BODY} bytes"}, "too_large")
            return None
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            self._send(400, {"error": f"body: not JSON ({exc})"}, "bad_request")
            return None

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._send(405, {"error": f"{self.command}: the node API is read-only"}, "not_allowed")

    do_PUT = do_DELETE = do_PATCH = _not_allowed


PER_ADDRESS = 4  # connections one TCP source address may hold at once (slow-loris)


def _source(client_address: Any) -> str:
    """A TCP caller's address; Unix-socket peers are told apart only after accept (pid)."""
    return client_address[0] if isinstance(client_address, tuple) and client_address else ""


class _Bounded:
    """Mixin: at most ``ctx.slots`` requests at once, and ``PER_ADDRESS`` per TCP source,
    so one pod that opens connections and stalls cannot take every slot; the rest get 503
    at once, without a thread."""

    ctx: ApiContext
    daemon_threads = True
    request_queue_size = 64
    _held: Counter
    _held_lock: threading.Lock

    def _take(self, source: str) -> bool:
        with self._held_lock:
            if source and self._held[source] >= PER_ADDRESS:
                return False
            if not self.ctx.slots.acquire(blocking=False):
                return False
            self._held[source] += 1
            return True

    def _give(self, source: str) -> None:
        with self._held_lock:
            self._held[source] -= 1
            if self._held[source] <= 0:
                del self._held[source]
        self.ctx.slots.release()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._take(_source(client_address)):
            self.ctx.count("busy")
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        super().process_request(request, client_address)  # type: ignore[misc]

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self._give(_source(client_address))

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("node api: connection error from %s", client_address, exc_info=True)


class _TcpServer(_Bounded, ThreadingHTTPServer):
    pass


class _UnixServer(_Bounded, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    pass


def _handler(ctx: ApiContext) -> type[_Handler]:
    return type("NodeApiHandler", (_Handler,), {"ctx": ctx})


def _claim_socket(path: str) -> None:
    """Remove a stale socket file left by an agent that died; never a live agent's.

    A second agent with the same configuration (or one started by mistake) must not take
    the running one's socket away from the applications and ``diagnose`` that use it.
    """
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:  # refused or not a socket: nobody is serving it
        Path(path).unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"{path}: another agent is listening on this socket")


class NodeApi:
    """Both listeners, started and stopped together."""

    def __init__(self, ctx: ApiContext, host: str, port: int, socket_path: str) -> None:
        self.ctx = ctx
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        handler = _handler(ctx)
        if host:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            server_cls = type("TcpServer", (_TcpServer,), {"address_family": family, "ctx": ctx,
                                                           "_held": Counter(),
                                                           "_held_lock": threading.Lock()})
            self._servers.append(server_cls((host, port), handler))
        if socket_path:
            Path(socket_path).parent.mkdir(parents=True, exist_ok=True)
            _claim_socket(socket_path)
            self._servers.append(type("UnixServer", (_UnixServer,), {
                "ctx": ctx, "_held": Counter(), "_held_lock": threading.Lock()})(
                socket_path, handler))
            # anyone may connect: who they are is decided by SO_PEERCRED, not file modes
            os.chmod(socket_path, 0o666)
        self.socket_path = socket_path

    @property
    def tcp_port(self) -> int | None:
        for server in self._servers:
            if isinstance(server, _TcpServer):
                return server.server_address[1]
        return None

    def start(self) -> None:
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, name="node-api", daemon=True)
            thread.start()
            self._threads.append(thread)

    def shutdown(self) -> None:
        started = bool(self._threads)
        for server in self._servers:
            if started:
                server.shutdown()  # blocks until serve_forever returns: only if it ran
            server.server_close()
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)
