"""NetReceiverInstrumentor: wrap getaddrinfo, connect and socket I/O; unwrap exactly.

The interface mimics opentelemetry-instrumentation's BaseInstrumentor (instrument(**kw),
uninstrument(**kw), instrumentation_dependencies(), is_instrumented_by_opentelemetry) so
`opentelemetry-instrument` can load it from the `opentelemetry_instrumentor` entry point,
without making opentelemetry-instrumentation (and wrapt, packaging) a dependency.

No module-level state: each wrapper carries what it replaced (`__netreceiver_patch__`), so
any instance can undo what any instance did, and a second instrument() is a no-op. The
success path is one try block around the original call (getaddrinfo also takes two clock
readings); all the work happens in Reporter, only when a call failed.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

from .errors import NOT_ERRORS
from .report import Reporter, is_literal

log = logging.getLogger("otel_netreceiver_sdk")

PATCH_ATTR = "__netreceiver_patch__"
REPORTER_ATTR = "__netreceiver_reporter__"
LITERAL_MEMO = 1024
_MISSING = object()

SOCKET_IO = {"send": "write", "sendall": "write", "sendto": "write", "recv": "read",
             "recv_into": "read", "recvfrom": "read", "recvfrom_into": "read",
             "connect": "connect"}
# ssl.SSLSocket overrides these in Python (Lib/ssl.py); its connect goes through
# socket.socket.connect (SSLSocket._real_connect calls super().connect).
SSL_IO = {"send": "write", "sendall": "write", "recv": "read", "recv_into": "read",
          "read": "read", "write": "write", "do_handshake": "connect"}


def _mark(wrapper: Callable, owner: object, name: str, original: object) -> Callable:
    functools.update_wrapper(wrapper, original, assigned=("__name__", "__qualname__",
                                                          "__doc__"), updated=())
    setattr(wrapper, PATCH_ATTR, (owner, name, owner.__dict__.get(name, _MISSING)))
    return wrapper


def _io_wrapper(original: Callable, phase: str, reporter: Reporter) -> Callable:
    on_error = reporter.socket_error

    def wrapper(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except OSError as exc:
            on_error(self, exc, phase)
            raise

    return wrapper


def _data_wrapper(original: Callable, phase: str, reporter: Reporter) -> Callable:
    """send/sendall/recv: the C methods' own (arg, flags=0) shape, no *args/**kwargs
    packing on the hot path (CPython Modules/socketmodule.c: flags defaults to 0)."""
    on_error = reporter.socket_error

    def wrapper(self: socket.socket, data: Any, flags: int = 0) -> Any:
        try:
            return original(self, data, flags)
        except OSError as exc:
            on_error(self, exc, phase)
            raise

    return wrapper


def _recv_into_wrapper(original: Callable, reporter: Reporter) -> Callable:
    on_error = reporter.socket_error

    def recv_into(self: socket.socket, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        try:
            return original(self, buffer, nbytes, flags)
        except OSError as exc:
            on_error(self, exc, "read")
            raise

    return recv_into


def _connect_ex_wrapper(original: Callable, reporter: Reporter) -> Callable:
    def connect_ex(self: socket.socket, address: Any) -> int:
        code = original(self, address)
        if code and code not in NOT_ERRORS:
            reporter.socket_errno(self, code, "connect")
        return code

    return connect_ex


def _getaddrinfo_wrapper(original: Callable, reporter: Reporter) -> Callable:
    on_error, record = reporter.dns_error, reporter.dns_duration.record
    numeric = int(socket.AI_NUMERICHOST)  # an IntFlag: its & runs Python code (enum.py)
    literal: dict[Any, bool] = {}  # host -> no lookup needed; an app resolves few hosts

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list:
        start = perf_counter()
        try:
            result = original(host, port, family, type, proto, flags)
        except OSError as exc:
            on_error(host, exc, perf_counter() - start)
            raise
        skip = literal.get(host)
        if skip is None:
            skip = is_literal(host)
            if len(literal) < LITERAL_MEMO:
                literal[host] = skip
        if not (skip or flags & numeric):
            record(perf_counter() - start)
        return result

    return getaddrinfo


def _create_connection_wrapper(original: Callable, reporter: Reporter) -> Callable:
    on_error = reporter.connection_error

    def create_connection(*args: Any, **kwargs: Any) -> socket.socket:
        try:
            return original(*args, **kwargs)
        except OSError as exc:
            on_error(exc)
            raise

    return create_connection


def _sock_connect_wrapper(original: Callable, reporter: Reporter) -> Callable:
    """asyncio's selector loop connects without raising from connect(): it reads SO_ERROR
    itself (Lib/asyncio/selector_events.py _sock_connect_cb), so wrap the coroutine."""
    on_error = reporter.socket_error

    async def sock_connect(self: Any, sock: socket.socket, address: Any) -> None:
        try:
            return await original(self, sock, address)
        except OSError as exc:
            on_error(sock, exc, "connect")
            raise

    return sock_connect


def _targets(reporter: Reporter) -> Iterator[tuple[object, str, Callable]]:
    yield socket, "getaddrinfo", _getaddrinfo_wrapper(socket.getaddrinfo, reporter)
    yield socket, "create_connection", _create_connection_wrapper(socket.create_connection,
                                                                  reporter)
    cls = socket.socket
    yield cls, "connect_ex", _connect_ex_wrapper(cls.connect_ex, reporter)
    for name, phase in SOCKET_IO.items():
        original = getattr(cls, name)
        if name in ("send", "sendall", "recv"):
            yield cls, name, _data_wrapper(original, phase, reporter)
        elif name == "recv_into":
            yield cls, name, _recv_into_wrapper(original, reporter)
        else:
            yield cls, name, _io_wrapper(original, phase, reporter)
    loop_cls = _selector_loop()
    yield loop_cls, "sock_connect", _sock_connect_wrapper(loop_cls.sock_connect, reporter)
    try:
        import ssl
    except ImportError:  # Python built without OpenSSL: nothing to wrap there
        return
    for name, phase in SSL_IO.items():
        yield ssl.SSLSocket, name, _io_wrapper(getattr(ssl.SSLSocket, name), phase, reporter)


def _selector_loop() -> type:
    from asyncio import selector_events

    return selector_events.BaseSelectorEventLoop


def installed_reporter() -> Reporter | None:
    """The Reporter of the wrappers in place now: found on any of ours still installed,
    so another library wrapping getaddrinfo over ours does not hide them."""
    for owner, name in _installed_names():
        reporter = getattr(owner.__dict__.get(name), REPORTER_ATTR, None)
        if reporter is not None:
            return reporter
    return None


class NetReceiverInstrumentor:
    """OpenTelemetry-contrib-style instrumentor for DNS and socket errors."""

    def instrumentation_dependencies(self) -> tuple[str, ...]:
        return ()  # instruments the standard library only

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:
        return installed_reporter() is not None

    def instrument(self, **kwargs: Any) -> None:
        """Install the wrappers. Keywords: meter_provider, logger_provider, config
        (SdkConfig), env (mapping, default os.environ); others are accepted and ignored
        (opentelemetry-instrument passes skip_dep_check, tracer_provider...)."""
        if self.is_instrumented_by_opentelemetry:
            log.warning("otel-netreceiver-sdk: already instrumented; instrument() ignored")
            return
        reporter = Reporter.create(env=kwargs.get("env", os.environ),
                                   config=kwargs.get("config"),
                                   meter_provider=kwargs.get("meter_provider"),
                                   logger_provider=kwargs.get("logger_provider"))
        for owner, name, wrapper in _targets(reporter):
            original = getattr(owner, name)
            _mark(wrapper, owner, name, original)
            setattr(wrapper, REPORTER_ATTR, reporter)
            setattr(owner, name, wrapper)

    def uninstrument(self, **kwargs: Any) -> None:
        """Put back exactly what was there: the same objects, or no attribute at all."""
        if not self.is_instrumented_by_opentelemetry:
            return
        for owner, name in _installed_names():
            current = owner.__dict__.get(name)
            patch = getattr(current, PATCH_ATTR, None)
            if patch is None:
                log.warning("otel-netreceiver-sdk: %s.%s was replaced by someone else; "
                            "left as it is", getattr(owner, "__name__", owner), name)
                continue
            _, _, previous = patch
            if previous is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)


def _installed_names() -> list[tuple[object, str]]:
    names: list[tuple[object, str]] = [(socket, "getaddrinfo"), (socket, "create_connection"),
                                       (socket.socket, "connect_ex")]
    names += [(socket.socket, name) for name in SOCKET_IO]
    names.append((_selector_loop(), "sock_connect"))
    try:
        import ssl
    except ImportError:
        return names
    return names + [(ssl.SSLSocket, name) for name in SSL_IO]
