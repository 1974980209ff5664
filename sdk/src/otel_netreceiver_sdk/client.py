"""Ask the node agent what it saw (docs/node-api.md), without ever harming the caller.

One total deadline (<= 200 ms) covers connect, send and every read; a small cache answers
the same kind of error again for a few seconds; a circuit breaker stops trying for a
cool-down after repeated failures (an absent agent costs one failed connect, not one per
error). `correlate` never raises.

The client's own sockets bypass the SDK's wrappers: `_DeadlineSocket` binds the C methods of
`_socket.socket` directly, so an error while correlating is not recorded and cannot start
another correlation.
"""

from __future__ import annotations

import _socket
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .answer import AgentAnswer, AnswerError, parse_answer
from .config import DEFAULT_PORT, DEFAULT_SOCKET, SdkConfig, log

_C = _socket.socket  # the C implementation: never patched by the instrumentor
MAX_BODY = 256 * 1024
CACHE_SLOTS = 64


@dataclass(frozen=True, slots=True)
class Endpoint:
    kind: str  # "unix" | "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class CorrelationRequest:
    signal: str
    error_type: str
    transport: str | None
    phase: str | None
    at_unix_nano: int
    window_seconds: int

    def body(self) -> bytes:
        doc = {"signal": self.signal, "error_type": self.error_type,
               "at_unix_nano": self.at_unix_nano, "window_seconds": self.window_seconds}
        doc.update({k: v for k, v in (("transport", self.transport), ("phase", self.phase)) if v})
        return json.dumps(doc).encode()


@dataclass(frozen=True, slots=True)
class CorrelationResult:
    """status: ok | cached | no_agent | circuit_open | timeout | unavailable | http_error
    | invalid_answer | internal_error."""

    status: str
    detail: str = ""
    answer: AgentAnswer | None = None


def _tcp_endpoint(url: str) -> Endpoint | None:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        port = parts.port or DEFAULT_PORT
        _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM, 0, _socket.AI_NUMERICHOST)
    except (ValueError, OSError):
        # A name would need a DNS lookup exactly when DNS may be what is failing.
        log.warning("otel-netreceiver-sdk: agent endpoint %r must be http://IP:PORT; "
                    "correlation disabled", url)
        return None
    return Endpoint("tcp", host=host, port=port)


def find_endpoint(config: SdkConfig, env: Mapping[str, str],
                  default_socket: Path = DEFAULT_SOCKET) -> Endpoint | None:
    """The contract's search order: socket variable, endpoint variable, socket, host IP."""
    if config.agent_socket:
        return Endpoint("unix", path=config.agent_socket)
    if config.agent_endpoint:
        return _tcp_endpoint(config.agent_endpoint)
    if default_socket.exists():
        return Endpoint("unix", path=str(default_socket))
    host_ip = env.get("K8S_HOST_IP", "").strip()
    return _tcp_endpoint(f"http://{host_ip}:{DEFAULT_PORT}") if host_ip else None


class _DeadlineSocket(socket.socket):
    """A socket whose I/O is the unwrapped C methods, each armed with what is left."""

    deadline = 0.0

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("correlation deadline passed")
        _C.settimeout(self, remaining)

    def connect(self, address: object) -> None:
        self._arm()
        _C.connect(self, address)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._arm()
        _C.sendall(self, data, flags)

    def send(self, data: bytes, flags: int = 0) -> int:
        self._arm()
        return _C.send(self, data, flags)

    def recv_into(self, buffer: memoryview, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        return _C.recv_into(self, buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return _C.recv(self, bufsize, flags)


class _AgentConnection(http.client.HTTPConnection):
    """HTTP/1.1 to the agent over a Unix socket or TCP, through `_DeadlineSocket`."""

    def __init__(self, endpoint: Endpoint, deadline: float) -> None:
        super().__init__(endpoint.host or "localhost", endpoint.port or None)
        self.endpoint, self.deadline = endpoint, deadline

    def connect(self) -> None:
        family = _socket.AF_UNIX if self.endpoint.kind == "unix" else (
            _socket.AF_INET6 if ":" in self.endpoint.host else _socket.AF_INET)
        sock = _DeadlineSocket(family, _socket.SOCK_STREAM)
        sock.deadline = self.deadline
        try:
            sock.connect(self.endpoint.path if family == _socket.AF_UNIX
                         else (self.endpoint.host, self.endpoint.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class CorrelationClient:
    """POST /v1/correlate with a deadline, a cache and a circuit breaker."""

    def __init__(self, endpoint: Endpoint | None, config: SdkConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint, self.config, self.clock = endpoint, config, clock
        self._lock = threading.Lock()
        self._cache: dict[tuple, tuple[float, CorrelationResult]] = {}
        self._failures = 0
        self._open_until = 0.0
        self.requests_sent = 0  # how many requests reached the network (tests, health)

    def correlate(self, request: CorrelationRequest) -> CorrelationResult:
        """The agent's answer, a cached one, or a status saying why there is none."""
        try:
            return self._correlate(request)
        except Exception as exc:  # never into the application
            return CorrelationResult("internal_error", f"{type(exc).__name__}: {exc}")

    def _correlate(self, request: CorrelationRequest) -> CorrelationResult:
        if self.endpoint is None:
            return CorrelationResult("no_agent", "no agent socket or endpoint configured")
        key = (request.signal, request.error_type, request.transport, request.phase)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached[0] > now:
                return CorrelationResult("cached", cached[1].detail, cached[1].answer)
            if self._open_until > now:
                return CorrelationResult("circuit_open", f"agent at {self.endpoint} failed "
                                         f"{self._failures} times; retrying in "
                                         f"{self._open_until - now:.1f} s")
            self.requests_sent += 1
        result, retry_after = self._send(request)
        self._remember(key, result, retry_after)
        return result

    def _remember(self, key: tuple, result: CorrelationResult, retry_after: float) -> None:
        now = self.clock()
        with self._lock:
            if result.status == "ok":
                self._failures = 0
                if len(self._cache) >= CACHE_SLOTS:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) < CACHE_SLOTS:
                    self._cache[key] = (now + self.config.cache_ttl_s, result)
                return
            self._failures += 1
            if retry_after > 0:
                self._open_until = now + retry_after
            elif self._failures >= self.config.breaker_failures:
                self._open_until = now + self.config.breaker_cooldown_s

    def _send(self, request: CorrelationRequest) -> tuple[CorrelationResult, float]:
        assert self.endpoint is not None
        conn = _AgentConnection(self.endpoint, time.monotonic() + self.config.timeout_s)
        try:
            conn.request("POST", "/v1/correlate", body=request.body(),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read(MAX_BODY)
            return self._interpret(response, body)
        except TimeoutError as exc:
            return CorrelationResult("timeout", f"agent at {self.endpoint}: {exc or 'timed out'}"
                                     ), 0.0
        except (OSError, http.client.HTTPException) as exc:
            return CorrelationResult("unavailable", f"agent at {self.endpoint}: "
                                     f"{type(exc).__name__}: {exc}"), 0.0
        finally:
            conn.close()

    def health(self) -> CorrelationResult:
        """GET /v1/health, under the same deadline, outside the cache and the breaker: for
        `python -m otel_netreceiver_sdk` (can this pod reach its agent?)."""
        if self.endpoint is None:
            return CorrelationResult("no_agent", "no agent socket or endpoint configured")
        conn = _AgentConnection(self.endpoint, time.monotonic() + self.config.timeout_s)
        try:
            conn.request("GET", "/v1/health")
            response = conn.getresponse()
            body = response.read(MAX_BODY).decode("utf-8", "replace")
            status = "ok" if response.status == 200 else "http_error"
            return CorrelationResult(status, f"agent at {self.endpoint}: HTTP "
                                     f"{response.status}: {body[:200]}")
        except Exception as exc:  # never raises, like correlate
            return CorrelationResult("unavailable", f"agent at {self.endpoint}: "
                                     f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def _interpret(self, response: http.client.HTTPResponse,
                   body: bytes) -> tuple[CorrelationResult, float]:
        where = f"agent at {self.endpoint}"
        if response.status != 200:
            retry = response.getheader("Retry-After", "") if response.status == 429 else ""
            detail = body[:200].decode("utf-8", "replace")
            return (CorrelationResult("http_error", f"{where}: HTTP {response.status}: "
                                      f"{detail}"),
                    float(retry) if retry.isdigit() else 0.0)
        try:
            return CorrelationResult("ok", where, parse_answer(body)), 0.0
        except AnswerError as exc:
            return CorrelationResult("invalid_answer", f"{where}: {exc}"), 0.0
