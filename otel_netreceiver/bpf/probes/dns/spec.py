"""The dns probe's rendering hooks and its cgroup attachment.

Rendering is pure (configuration and tracepoint format → #defines): the DNS ports and
service addresses become compare chains in C macros, so the per-packet filter needs no map
lookup. Attachment: two BPF_PROG_TYPE_CGROUP_SKB programs on the cgroup v2 root through
bpf_link (BPF_LINK_CREATE), which the kernel detaches when the link's file is closed, so a
killed agent leaves nothing attached (a program attached with BPF_PROG_ATTACH would stay
until someone detached it). Links on a cgroup always let other programs run too
(kernel/bpf/cgroup.c, cgroup_bpf_link_attach attaches with BPF_F_ALLOW_MULTI), so the agent
never displaces another tool's programs.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import struct
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.programs import Formats
from otel_netreceiver.dns.pending import DEFAULT_TIMEOUT_NS
from otel_netreceiver.dns.services import LinkLocalService, ResolverClass, ServiceAddresses

if TYPE_CHECKING:
    from otel_netreceiver.config.schema import DnsProbeConfig

# the C's codes: resolver class in the low nibble, link-local service in the high one
RESOLVER_CODES = {ResolverClass.OTHER: 0, ResolverClass.CLUSTER: 1,
                  ResolverClass.NODE_LOCAL: 2, ResolverClass.AMAZON: 3}
SERVICE_CODES = {LinkLocalService.DNS: 1, LinkLocalService.IMDS: 2,
                 LinkLocalService.TIME_SYNC: 3}
CGROUP_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")  # hybrid v1+v2, then pure v2
# include/uapi/linux/bpf.h
BPF_LINK_CREATE = 28
BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS = 0, 1
SYS_BPF_X86_64 = 321
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def services(config: DnsProbeConfig) -> ServiceAddresses:
    return ServiceAddresses.build(config.cluster_dns, config.node_local_dns, config.vpc_cidrs,
                                  config.amazon_dns, config.imds, config.time_sync,
                                  where="collectors.ebpf.dns")


def service_codes(addresses: ServiceAddresses) -> dict[Address, int]:
    """Every configured address → resolver class | link-local service << 4 (0: neither)."""
    every = (addresses.cluster_dns | addresses.node_local_dns | addresses.amazon_dns
             | addresses.imds | addresses.time_sync)
    codes = {}
    for address in every:
        service = addresses.link_local_service(address)
        code = RESOLVER_CODES[addresses.resolver_class(address)]
        code |= SERVICE_CODES[service] << 4 if service else 0
        if code:
            codes[address] = code
    return codes


def _words(address: Address) -> tuple[int, ...]:
    """The address as the program loads it: 32-bit little-endian words of network order."""
    packed = address.packed
    return struct.unpack(f"<{len(packed) // 4}I", packed)


def classifiers(config: DnsProbeConfig) -> dict[str, str]:
    """DNS_PORT(p), SERVICE_V4(a), SERVICE_V6(w) as macros: compare chains, no map lookup."""
    ports = " || ".join(f"(p) == {int(port)}" for port in sorted(set(config.ports))) or "0"
    v4, v6 = [], []
    for address, code in sorted(service_codes(services(config)).items(),
                                key=lambda item: (item[0].version, str(item[0]))):
        words = _words(address)
        if address.version == 4:
            v4.append(f"(a) == {words[0]}U ? {code} : ")
        else:
            test = " && ".join(f"(w)[{i}] == {word}U" for i, word in enumerate(words))
            v6.append(f"({test}) ? {code} : ")
    return {"DNS_PORT(p)": f"({ports})", "SERVICE_V4(a)": f"((u8)({''.join(v4)}0))",
            "SERVICE_V6(w)": f"((u8)({''.join(v6)}0))"}


# bytes of struct sk_buff read at once from transport_header to the end of head
# (include/linux/skbuff.h keeps the header offsets and head together: 22 bytes on 6.18)
SKB_WINDOW = 32


def defines(formats: Formats, config: Any) -> dict[str, Any]:
    """ProbeSpec.defines: collectors.ebpf.dns and this kernel's NO_SOCKET drop reason."""
    out: dict[str, Any] = {"PENDING_MAX": config.dns.max_pending, "SKB_WINDOW": SKB_WINDOW,
                           "DEFAULT_TIMEOUT_NS": DEFAULT_TIMEOUT_NS,
                           **classifiers(config.dns)}
    fmt = formats.get(("skb", "kfree_skb"))
    reasons = fmt.symbols.get("reason", {}) if fmt else {}
    no_socket = [value for value, name in reasons.items() if name.upper() == "NO_SOCKET"]
    if no_socket:  # kernels before 5.17 have no drop reasons: late answers to gone sockets
        out["NO_SOCKET_REASON"] = no_socket[0]  # are then not seen
    return out


def cgroup_root() -> str | None:
    """The cgroup v2 hierarchy's root: where the programs see every socket of the node."""
    for path in CGROUP_ROOTS:
        if os.path.exists(os.path.join(path, "cgroup.controllers")):
            return path
    return None


def link_create(prog_fd: int, target_fd: int, attach_type: int) -> int:
    """bpf(BPF_LINK_CREATE): union bpf_attr link_create {prog_fd, target_fd, attach_type,
    flags} (include/uapi/linux/bpf.h); the link fd, or OSError with the kernel's errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("<IIII", prog_fd, target_fd, attach_type, 0),
                                       64)
    fd = libc.syscall(SYS_BPF_X86_64, BPF_LINK_CREATE, attr, 64)
    if fd < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"BPF_LINK_CREATE: {os.strerror(errno)}")
    return int(fd)


class DnsObject:
    """The loaded bcc object plus its cgroup links; cleanup() detaches both.

    Acts like the bcc object for the collector (tables by name, funcs, cleanup), keeps the
    reader's state between cycles (``state``), and socket_hooks(on) for
    bench/bench_workload.py's rounds with and without.
    """

    def __init__(self, bpf: Any, root: str) -> None:
        from bcc import BPF

        self._bpf, self._root = bpf, root
        self._programs = [(bpf.load_func(name, BPF.CGROUP_SKB).fd, kind)
                          for name, kind in ((b"dns_egress", BPF_CGROUP_INET_EGRESS),
                                             (b"dns_ingress", BPF_CGROUP_INET_INGRESS))]
        self._links: list[int] = []
        self.state: Any = None  # the reader's (bpf/probes/dns/reader.py)
        self.attach()

    def attach(self) -> None:
        if self._links:
            return
        target = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for prog_fd, kind in self._programs:
                self._links.append(link_create(prog_fd, target, kind))
        except OSError:
            self.detach()
            raise
        finally:
            os.close(target)

    def detach(self) -> None:
        while self._links:
            os.close(self._links.pop())

    def socket_hooks(self, on: bool) -> None:
        """Attach or detach the cgroup programs (benchmark rounds with and without)."""
        self.attach() if on else self.detach()

    def __getitem__(self, name: bytes) -> Any:
        return self._bpf[name]

    def __getattr__(self, name: str) -> Any:  # funcs, tracepoint_fds, ...
        return getattr(self._bpf, name)

    def cleanup(self) -> None:
        self.detach()
        self._bpf.cleanup()


def finish(bpf: Any) -> DnsObject:
    """ProbeSpec.finish: attach the socket programs to the cgroup v2 root."""
    root = cgroup_root()
    if root is None:
        raise RuntimeError("no cgroup v2 hierarchy mounted (looked at "
                           f"{', '.join(CGROUP_ROOTS)}): the socket hooks need one")
    return DnsObject(bpf, root)
