"""sock_diag messages for TCP: the dump request and the RTT of each socket in the answer.

A NETLINK_SOCK_DIAG dump (SOCK_DIAG_BY_FAMILY with struct inet_diag_req_v2,
include/uapi/linux/inet_diag.h) asking for INET_DIAG_INFO returns one
struct inet_diag_msg per socket followed by a struct tcp_info attribute
(include/uapi/linux/tcp.h). tcp_info fills its times in microseconds
(tcp_get_info, net/ipv4/tcp.c): tcpi_rtt = srtt_us >> 3 (the smoothed RTT),
tcpi_rttvar = mdev_us >> 2 (the smoothed mean deviation, without the RTO's
floor), tcpi_min_rtt = the windowed minimum (the path's floor). Pure: bytes in,
frozen records out; netlink.py does the I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from otel_netreceiver.kernel_abi import TcpState

# include/uapi/linux/netlink.h, sock_diag.h, inet_diag.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
SOCK_DIAG_BY_FAMILY = 20
TCPDIAG_GETSOCK = 18  # the original inet_diag request: one dump of both families
INET_DIAG_INFO = 2
IPPROTO_TCP = 6
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_REQ = struct.Struct("=BBBxI48x")  # family, protocol, ext, pad, states, inet_diag_sockid
_REQ_V1 = struct.Struct("=BBBB48xII")  # family, src_len, dst_len, ext, id, states, dbs
_MSG = struct.Struct("=BBBB48xIIIII")  # family, state, timer, retrans, id, expires, rq, wq, ..
_RTA = struct.Struct("=HH")
# offsets in struct tcp_info (include/uapi/linux/tcp.h): tcpi_rtt, tcpi_rttvar, tcpi_min_rtt
_RTT_OFFSET, _MIN_RTT_OFFSET = 68, 148


class DiagError(ValueError):
    """The kernel answered the dump with an error, or the answer is malformed."""


@dataclass(frozen=True, slots=True)
class SocketRtt:
    """One socket's RTT estimate, in microseconds, and its queues in bytes."""

    srtt_us: int
    rttvar_us: int
    min_rtt_us: int  # 0: the kernel has no minimum yet (or tcp_info predates 4.10)
    rx_queue: int
    tx_queue: int


def _request(kind: int, body: bytes, seq: int) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP,
                          seq, 0) + body


def dump_request(family: int, seq: int = 1,
                 states: Iterable[TcpState] = (TcpState.ESTABLISHED,)) -> bytes:
    """A dump of the namespace's TCP sockets of ``family`` in ``states``, with tcp_info."""
    mask = sum(1 << state for state in states)
    return _request(SOCK_DIAG_BY_FAMILY,
                    _REQ.pack(family, IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), mask), seq)


def dump_request_both(seq: int = 1,
                      states: Iterable[TcpState] = (TcpState.ESTABLISHED,)) -> bytes:
    """The same dump for IPv4 and IPv6 at once: half the cost, since every dump walks the
    node's whole established hash. SOCK_DIAG_BY_FAMILY needs one family per request; the
    original TCPDIAG_GETSOCK request dumps with AF_UNSPEC (net/ipv4/inet_diag.c,
    inet_diag_dump_compat: "compatibility"), so one walk returns both."""
    mask = sum(1 << state for state in states)
    return _request(TCPDIAG_GETSOCK, _REQ_V1.pack(0, 0, 0, 1 << (INET_DIAG_INFO - 1), mask, 0),
                    seq)


def _align(n: int) -> int:
    return (n + 3) & ~3


def _tcp_info(data: bytes, start: int, end: int) -> bytes | None:
    """The INET_DIAG_INFO attribute among the rtattrs in data[start:end]."""
    while start + _RTA.size <= end:
        length, kind = _RTA.unpack_from(data, start)
        if length < _RTA.size:
            raise DiagError(f"rtattr of length {length} at {start}")
        if kind == INET_DIAG_INFO:
            return data[start + _RTA.size:start + length]
        start += _align(length)
    return None


def _socket(data: bytes, start: int, end: int) -> SocketRtt | None:
    if end - start < _MSG.size:
        raise DiagError(f"inet_diag_msg of {end - start} bytes")
    *_, rqueue, wqueue, _uid, _inode = _MSG.unpack_from(data, start)
    info = _tcp_info(data, start + _MSG.size, end)
    if info is None or len(info) < _RTT_OFFSET + 8:
        return None  # no tcp_info: not a full socket (the dump asked for established ones)
    srtt, rttvar = struct.unpack_from("=II", info, _RTT_OFFSET)
    min_rtt = (struct.unpack_from("=I", info, _MIN_RTT_OFFSET)[0]
               if len(info) >= _MIN_RTT_OFFSET + 4 else 0)
    return SocketRtt(srtt, rttvar, min_rtt, rqueue, wqueue)


def parse_dump(data: bytes) -> tuple[list[SocketRtt], bool]:
    """Sockets in one recv() of a dump's answer, and whether the dump is done."""
    sockets: list[SocketRtt] = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise DiagError(f"netlink message of length {length} at {offset}")
        body = offset + _NLMSGHDR.size
        if kind == NLMSG_DONE:
            return sockets, True
        if kind == NLMSG_ERROR:
            code = -struct.unpack_from("=i", data, body)[0]
            raise DiagError(f"sock_diag answered errno {code}")
        if kind in (SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK):
            found = _socket(data, body, offset + length)
            if found is not None and found.srtt_us > 0:  # 0: no RTT sample yet
                sockets.append(found)
        offset += _align(length)
    return sockets, False


@dataclass(frozen=True, slots=True)
class RttSummary:
    """A namespace's sockets in a few numbers (seconds): no addresses, no per-socket series."""

    sockets: int
    srtt_mean: float
    srtt_max: float
    rttvar_mean: float
    rttvar_max: float
    min_rtt_min: float  # the lowest floor: the nearest peer (0 when no socket has one)


def summarize(sockets: list[SocketRtt]) -> RttSummary:
    if not sockets:
        return RttSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    n, us = len(sockets), 1e-6
    floors = [s.min_rtt_us for s in sockets if s.min_rtt_us > 0]
    return RttSummary(n, sum(s.srtt_us for s in sockets) / n * us,
                      max(s.srtt_us for s in sockets) * us,
                      sum(s.rttvar_us for s in sockets) / n * us,
                      max(s.rttvar_us for s in sockets) * us,
                      min(floors) * us if floors else 0.0)
