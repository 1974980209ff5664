"""Who is asking: a pod on this node, the node itself (host network), or nobody we know.

TCP callers are named by source address: a node address means host network (hostNetwork
pods share it, so they get node aggregates only); a pod IP from this node's pod watch
means that pod; anything else is refused. Unix-socket callers are named by the kernel:
SO_PEERCRED gives the pid, whose cgroup path carries the pod UID (k8s/cgroup.py), which
source addresses cannot forge and which survives pod IP reuse (docs/background.md, "Node-local
API callers").
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from otel_netreceiver.k8s.cgroup import pod_of_process
from otel_netreceiver.k8s.directory import PodMeta
from otel_netreceiver.netns.discovery import netns_inode
from otel_netreceiver.netns.identity import host_netns_inode

POD, HOST = "pod", "host"


@dataclass(frozen=True, slots=True)
class Caller:
    kind: str  # pod | host
    pod_uid: str = ""
    pod_name: str = ""
    namespace: str = ""
    via: str = ""  # how it was identified, for logs
    admin: bool = False  # may ask for the whole node's diagnosis (see from_pid)

    @property
    def key(self) -> str:
        """Rate-limit bucket: one per pod, one for the whole host network."""
        return self.pod_uid or HOST

    def as_dict(self) -> dict[str, str]:
        out = {"kind": self.kind}
        if self.kind == POD:
            out["k8s.pod.uid"] = self.pod_uid
            if self.pod_name:
                out["k8s.pod.name"], out["k8s.namespace.name"] = self.pod_name, self.namespace
        return out


class Refused(Exception):
    """The caller could not be identified as a pod of this node or the node itself."""


def parse_fib_trie_locals(text: str) -> set[str]:
    """IPv4 addresses marked ``/32 host LOCAL`` in /proc/net/fib_trie: the node's own."""
    found, last = set(), ""
    for line in text.splitlines():
        stripped = line.strip().lstrip("|-+ ").strip()
        if not stripped:
            continue
        if stripped[0].isdigit() and "/" not in stripped:
            last = stripped.split()[0]
        elif stripped.startswith("/32 host LOCAL") and last:
            found.add(last)
    return found


def parse_if_inet6(text: str) -> set[str]:
    """Addresses of /proc/net/if_inet6 (32 hex digits per line, first field)."""
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if fields and len(fields[0]) == 32:
            found.add(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return found


def node_addresses(proc_root: str) -> set[str]:
    """The host network namespace's addresses (the agent runs with hostNetwork)."""
    out: set[str] = set()
    for name, parse in (("fib_trie", parse_fib_trie_locals), ("if_inet6", parse_if_inet6)):
        try:
            out |= parse(Path(proc_root, "self", "net", name).read_text())
        except OSError:
            continue
    return out


def peer_credentials(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket (SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid


def _normal(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return ip
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


class CallerIdentifier:
    """Turns a connection into a Caller, or raises Refused with the reason."""

    def __init__(self, proc_root: str, by_uid: Callable[[str], PodMeta | None],
                 by_ip: Callable[[str], PodMeta | None],
                 addresses: Callable[[], set[str]] | None = None) -> None:
        self._proc_root, self._by_uid, self._by_ip = proc_root, by_uid, by_ip
        self._addresses = addresses or (lambda: node_addresses(proc_root))

    def from_ip(self, ip: str) -> Caller:
        ip = _normal(ip)
        pod = self._by_ip(ip)
        if pod is not None and not pod.host_network:
            return Caller(POD, pod.uid, pod.name, pod.namespace, via=f"ip {ip}")
        if ip in self._addresses() or ipaddress.ip_address(ip).is_loopback:
            return Caller(HOST, via=f"ip {ip}")
        raise Refused(f"{ip} is neither a pod of this node nor a node address")

    def _pod_of(self, pid: str) -> str | None:
        try:
            text = Path(self._proc_root, pid, "cgroup").read_text()
        except OSError as exc:
            raise Refused(f"pid {pid}: cannot read its cgroup ({exc.strerror})") from None
        pod = pod_of_process(text)
        return pod.pod_uid if pod is not None else None

    def from_pid(self, pid: int, uid: int = -1) -> Caller:
        """A Unix-socket peer. Admins (the whole node's diagnosis) are processes of the
        agent's own pod (``kubectl exec`` into it) and root on the node outside any pod."""
        pod_uid = self._pod_of(str(pid))
        if pod_uid is not None:
            meta = self._by_uid(pod_uid)
            name, namespace = (meta.name, meta.namespace) if meta else ("", "")
            own = pod_uid == self._own_pod()
            return Caller(POD, pod_uid, name, namespace, via=f"pid {pid}", admin=own)
        if self._in_host_netns(pid):
            return Caller(HOST, via=f"pid {pid}", admin=uid == 0)
        raise Refused(f"pid {pid} is in no pod cgroup and not in the node's network namespace")

    def _own_pod(self) -> str | None:
        try:
            return self._pod_of("self")
        except Refused:
            return None

    def _in_host_netns(self, pid: int) -> bool:
        """The same host rule as the per-pod collector's netns.kind=host (netns/identity.py)."""
        host = host_netns_inode(self._proc_root)
        try:
            theirs = netns_inode(os.readlink(f"{self._proc_root}/{pid}/ns/net"))
        except OSError:
            return False
        return host is not None and theirs == host
