"""Classify DNS and socket errors, whichever HTTP client wrapped them.

requests/urllib3, httpx/httpcore and aiohttp each wrap the `OSError` the kernel (or libc's
resolver) raised in their own exception types, chained through `__cause__`/`__context__`,
kept in `.args`, or in attributes (`reason`, `os_error`, `exceptions`). `classify` walks all
of them to the error at the bottom, so an application gets one answer whichever client it
uses. The `error.type` values are small enums: metric attributes stay bounded.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

# Where the wrappers leave their observation on the exception object (see Observation).
OBSERVATION_ATTR = "_otel_netreceiver_observation"

OTHER = "_OTHER"  # the semantic conventions' fallback value for error.type

# getaddrinfo's EAI_* codes (glibc and musl both return EAI_AGAIN for SERVFAIL and for
# timeouts: resolv/res_send.c, musl src/network/lookup_name.c), as small names.
EAI_TYPES: dict[int, str] = {
    socket.EAI_NONAME: "host_not_found",
    socket.EAI_AGAIN: "try_again",
    socket.EAI_FAIL: "server_failure",
    socket.EAI_FAMILY: "address_family",
    socket.EAI_SERVICE: "service_not_found",
    socket.EAI_MEMORY: "out_of_memory",
    socket.EAI_SYSTEM: "system_error",
}
for _name, _value in (("EAI_NODATA", "no_data"), ("EAI_ADDRFAMILY", "no_address_in_family")):
    if hasattr(socket, _name):  # glibc extensions, absent on some platforms
        EAI_TYPES[getattr(socket, _name)] = _value

# The errnos a network call reports, by name; anything else is _OTHER (bounded cardinality).
SOCKET_ERRNOS: frozenset[str] = frozenset({
    "ECONNRESET", "EPIPE", "ETIMEDOUT", "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH",
    "ECONNABORTED", "EADDRNOTAVAIL", "EADDRINUSE", "ENOBUFS", "ENETDOWN", "EHOSTDOWN",
    "EMSGSIZE", "ENOTCONN", "EPERM", "EACCES", "ENETRESET", "EPROTO",
})

# Not errors: a non-blocking socket's normal "try again later" (asyncio raises these
# on every would-block) and connect_ex's in-progress codes.
NOT_ERRORS: frozenset[int] = frozenset({
    errno.EAGAIN, errno.EWOULDBLOCK, errno.EINPROGRESS, errno.EALREADY, errno.EISCONN,
    errno.EINTR, 0,
})

_LINKS = ("__cause__", "__context__", "reason", "os_error", "_os_error", "original_error")


@dataclass(frozen=True, slots=True)
class Observation:
    """What a wrapper saw when the call failed: attached to the exception it re-raises."""

    signal: str  # "dns" | "socket"
    error_type: str
    phase: str  # lookup | connect | read | write
    transport: str | None
    at_unix_nano: int
    duration_s: float | None = None
    packets_lost: bool | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    """The SDK's own reading of an error, before asking the node agent."""

    signal: str  # "dns" | "socket" | "unknown"
    error_type: str
    errno: int | None
    exception: str  # qualified type name of the error at the bottom of the chain
    observation: Observation | None = None


def dns_error_type(exc: BaseException) -> str:
    """error.type for a failed getaddrinfo: the EAI name, or the OSError's own type."""
    if isinstance(exc, socket.gaierror):
        return EAI_TYPES.get(exc.errno or 0, OTHER)
    return socket_error_type(exc)


def socket_error_type(exc: BaseException) -> str:
    """error.type for a failed socket call: the errno name from a fixed set, or timeout."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        name = errno.errorcode.get(code, OTHER)
        return name if name in SOCKET_ERRNOS else OTHER
    if isinstance(exc, TimeoutError):
        return "timeout"  # socket.timeout since 3.10: the application's own deadline
    return OTHER


def _neighbours(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    for name in _LINKS:
        value = getattr(exc, name, None)
        if isinstance(value, BaseException):
            found.append(value)
    for seq in (getattr(exc, "args", ()), getattr(exc, "exceptions", ())):
        if isinstance(seq, tuple):
            found.extend(v for v in seq if isinstance(v, BaseException))
    return found


def walk_chain(exc: BaseException, limit: int = 64) -> list[BaseException]:
    """Every exception reachable from exc (depth first, each once, at most `limit`)."""
    seen: set[int] = set()
    order: list[BaseException] = []
    stack = [exc]
    while stack and len(order) < limit:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        order.append(current)
        stack.extend(reversed(_neighbours(current)))
    return order


def _rank(exc: BaseException) -> int:
    """Which error in a chain explains it best: the wrapper's own observation first."""
    if getattr(exc, OBSERVATION_ATTR, None) is not None:
        return 5
    if isinstance(exc, socket.gaierror):
        return 4
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return 3
    if isinstance(exc, TimeoutError):
        return 2
    return 1 if isinstance(exc, OSError) else 0


def bottom_error(exc: BaseException) -> BaseException:
    """The OSError/gaierror/timeout under any number of client-library wrappers."""
    best, best_rank = exc, -1
    for candidate in walk_chain(exc):
        rank = _rank(candidate)
        if rank > best_rank:  # ties keep the first found: the outermost of equals
            best, best_rank = candidate, rank
    return best


def classify(exc: BaseException) -> Classification:
    """Classify any exception: dns or socket, with a bounded error.type."""
    bottom = bottom_error(exc)
    observation = getattr(bottom, OBSERVATION_ATTR, None)
    name = f"{type(bottom).__module__}.{type(bottom).__qualname__}"
    code = getattr(bottom, "errno", None)
    code = code if isinstance(code, int) else None
    if isinstance(observation, Observation):
        return Classification(observation.signal, observation.error_type, code, name, observation)
    if isinstance(bottom, socket.gaierror):
        return Classification("dns", dns_error_type(bottom), code, name)
    if isinstance(bottom, OSError):
        return Classification("socket", socket_error_type(bottom), code, name)
    if "timeout" in type(bottom).__name__.lower():
        # A client's own timeout type with nothing chained below (e.g. a pool timeout).
        return Classification("socket", "timeout", None, name)
    return Classification("unknown", OTHER, None, name)
