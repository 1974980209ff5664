"""Thin I/O: a NETLINK_SOCK_DIAG socket inside another network namespace, and a TCP dump.

A netlink socket answers for the namespace it was created in and keeps it for life
(net/netlink/af_netlink.c: sock_net of the socket), so the calling thread setns()es
into the target namespace (``<proc_root>/<pid>/ns/net``) for the one socket() call and
straight back to its own (``/proc/thread-self/ns/net``). Namespaces are per thread
(kernel/nsproxy.c: setns switches the calling task only): other threads of the agent
never see the switch. setns into a network namespace needs CAP_SYS_ADMIN
(net/core/net_namespace.c: netns_install).
"""

from __future__ import annotations

import ctypes
import os
import socket
from functools import cache

from otel_netreceiver.sockdiag.tcpinfo import SocketRtt, dump_request_both, parse_dump

CLONE_NEWNET = 0x40000000  # include/uapi/linux/sched.h
NETLINK_SOCK_DIAG = 4  # include/uapi/linux/netlink.h
_RECV = 65536


@cache
def _libc_setns():  # type: ignore[no-untyped-def]
    return ctypes.CDLL(None, use_errno=True).setns


def _setns(fd: int) -> None:
    if _libc_setns()(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns(CLONE_NEWNET): {os.strerror(code)}")


def socket_in(ns_path: str) -> socket.socket:
    """A sock_diag socket of the namespace at ``ns_path``; this thread stays in its own."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                     NETLINK_SOCK_DIAG)
            finally:
                _setns(home)  # with our own namespace's fd and the capability, cannot fail
        finally:
            os.close(target)
    finally:
        os.close(home)


def dump_tcp(sock: socket.socket) -> list[SocketRtt]:
    """Every established TCP socket, IPv4 and IPv6, in the socket's namespace."""
    sock.send(dump_request_both())
    found: list[SocketRtt] = []
    while True:
        sockets, done = parse_dump(sock.recv(_RECV))
        found += sockets
        if done:
            return found


def established_rtts(ns_path: str) -> list[SocketRtt]:
    """Established sockets of a namespace (one netlink socket, one dump)."""
    with socket_in(ns_path) as sock:
        return dump_tcp(sock)
