"""Which host interface a namespace's packets to an address leave the node by.

A pod's packet to a link-local service is seen at the pod's own socket, where its device is
the pod's eth0. The ENI it leaves the node by is the node's routing decision for a packet
that arrives on the pod's host-side veth: on EKS with the VPC CNI, pods on a secondary
ENI have a policy rule (``from <pod IP> [to <VPC CIDR>] lookup <ENI table>``), so the ENI
depends on the pod's address and on the destination (VPC+2 may leave by the pod's ENI and
169.254.169.253 by the primary one). So the answer is asked of the kernel the way it would
route the packet: an rtnetlink RTM_GETROUTE in the agent's (the node's) namespace with the
pod's address as source, its host-side veth as input interface (found the same way: the
node's route back to the pod's address) and the service address as destination
(net/ipv4/route.c inet_rtm_getroute, ip_route_input_rcu). What the lookup cannot see:
firewall marks set by iptables rules (``fwmark`` policy rules), which a packet would carry
and a lookup does not.

The request is packed here rather than through pyroute2: importing pyroute2 adds ~22 MB of
resident memory to the agent and a lookup through it costs ~50x the CPU
(BENCHMARKS.md, "Link-local egress interface: our RTM_GETROUTE against pyroute2").
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from otel_netreceiver.nodeapi.callers import parse_fib_trie_locals, parse_if_inet6

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# include/uapi/linux/rtnetlink.h, netlink.h
RTM_NEWROUTE, RTM_GETROUTE, NLMSG_ERROR = 24, 26, 2
NLM_F_REQUEST = 1
RTA_DST, RTA_SRC, RTA_IIF, RTA_OIF = 1, 2, 3, 4
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_RTMSG = struct.Struct("=BBBBBBBBI")  # struct rtmsg
_RTA = struct.Struct("=HH")  # struct rtattr


def _attribute(kind: int, payload: bytes) -> bytes:
    length = _RTA.size + len(payload)
    return _RTA.pack(length, kind) + payload + b"\0" * (-length % 4)


def route_request(seq: int, dst: Address, src: Address | None = None,
                  iif: int | None = None) -> bytes:
    """An RTM_GETROUTE message: the route a packet to ``dst`` (from ``src``, arriving on
    interface ``iif``) would take. Pure, for the tests."""
    family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    bits = dst.max_prefixlen
    body = _RTMSG.pack(family, bits, bits if src is not None else 0, 0, 0, 0, 0, 0, 0)
    body += _attribute(RTA_DST, dst.packed)
    if src is not None:
        body += _attribute(RTA_SRC, src.packed)
    if iif is not None:
        body += _attribute(RTA_IIF, struct.pack("=I", iif))
    return _HEADER.pack(_HEADER.size + len(body), RTM_GETROUTE, NLM_F_REQUEST, seq, 0) + body


def parse_route_reply(data: bytes) -> int | None:
    """The output interface of an RTM_NEWROUTE answer; None for an error (no route,
    forwarding off on the input interface, a source the reverse path filter refuses)."""
    if len(data) < _HEADER.size:
        return None
    length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data)
    if kind != RTM_NEWROUTE:
        return None
    pos = _HEADER.size + _RTMSG.size
    while pos + _RTA.size <= min(length, len(data)):
        size, attr = _RTA.unpack_from(data, pos)
        if size < _RTA.size:
            return None
        if attr == RTA_OIF and size >= _RTA.size + 4:
            return int(struct.unpack_from("=I", data, pos + _RTA.size)[0])
        pos += (size + 3) & ~3
    return None


class RouteLookup:
    """One rtnetlink socket in the agent's namespace, asked one route at a time."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.settimeout(1.0)
        self._seq = 0

    def oif(self, dst: Address, src: Address | None = None, iif: int | None = None) -> int | None:
        """The interface the node would send the packet out of, or None."""
        self._seq += 1
        try:
            self._sock.send(route_request(self._seq, dst, src, iif))
            while True:
                reply = self._sock.recv(65536)
                if len(reply) >= _HEADER.size and _HEADER.unpack_from(reply)[3] == self._seq:
                    return parse_route_reply(reply)
        except OSError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, None):
                return None
            raise

    def close(self) -> None:
        self._sock.close()


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def namespace_addresses(proc_root: str, pid: int) -> list[Address]:
    """A namespace's own addresses (IPv4 local routes, IPv6 global ones), from its first
    process's view of /proc/net: loopback and IPv6 link-local ones left out."""
    base = os.path.join(proc_root, str(pid), "net")
    texts = parse_fib_trie_locals(_read(os.path.join(base, "fib_trie")))
    texts |= parse_if_inet6(_read(os.path.join(base, "if_inet6")))
    out: list[Address] = []
    for text in sorted(texts):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            out.append(address)
    return out


@dataclass(frozen=True, slots=True)
class Egress:
    """Where one namespace's packets to one service address leave the node."""

    address: Address  # the service's
    ifindex: int


def resolve_namespace(lookup: RouteLookup, own: Iterable[Address],
                      services: Iterable[Address]) -> list[Egress]:
    """Each service address → the host interface a packet from the namespace (one of its
    addresses of that family) would leave by; addresses with no route are left out."""
    by_family: dict[int, Address] = {}
    for address in own:
        by_family.setdefault(address.version, address)
    veths: dict[int, int | None] = {v: lookup.oif(a) for v, a in by_family.items()}
    out = []
    for service in services:
        src, veth = by_family.get(service.version), veths.get(service.version)
        if src is None or veth is None:
            continue
        ifindex = lookup.oif(service, src, veth)
        if ifindex is not None:
            out.append(Egress(service, ifindex))
    return out


def resolve_node(lookup: RouteLookup, services: Iterable[Address]) -> list[Egress]:
    """The node's own route (main decision, no source) to each service address: used for a
    namespace not resolved yet."""
    out = []
    for service in services:
        ifindex = lookup.oif(service)
        if ifindex is not None:
            out.append(Egress(service, ifindex))
    return out
