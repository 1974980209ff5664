"""The dns probe's rendering hooks and its cgroup attachment.

Rendering is pure (configuration and tracepoint format → #defines): the DNS ports and
service addresses become compare chains in C macros, so the per-packet filter needs no map
lookup. Attachment: two BPF_PROG_TYPE_CGROUP_SKB programs (dns_egress, dns_ingress) on the
cgroup v2 root through bpf_link (bpf/socket_hooks.py says why), or, with other socket-hook
probes on, its handler dns_skb in their shared programs (bpf/compose_hooks.py).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.programs import Formats
from otel_netreceiver.bpf.socket_hooks import attacher
from otel_netreceiver.dns.pending import DEFAULT_TIMEOUT_NS
from otel_netreceiver.dns.services import (
    LinkLocalService,
    NodeService,
    ResolverClass,
    ServiceAddresses,
)

if TYPE_CHECKING:
    from otel_netreceiver.config.schema import DnsProbeConfig

# the C's codes: resolver class in the low nibble, link-local service in the high one
RESOLVER_CODES = {ResolverClass.OTHER: 0, ResolverClass.CLUSTER: 1,
                  ResolverClass.NODE_LOCAL: 2, ResolverClass.AMAZON: 3}
# 1-3 answered by the ENI (they count against its allowance), 4-5 answered on the node
SERVICE_CODES: dict[LinkLocalService | NodeService, int] = {
    LinkLocalService.DNS: 1, LinkLocalService.IMDS: 2, LinkLocalService.TIME_SYNC: 3,
    NodeService.NODE_LOCAL_DNS: 4, NodeService.POD_IDENTITY: 5}
ENI_SERVICES = 3  # the C's LL_ENI_SERVICES: codes up to it leave through an ENI
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def services(config: DnsProbeConfig) -> ServiceAddresses:
    return ServiceAddresses.build(config.cluster_dns, config.node_local_dns, config.vpc_cidrs,
                                  config.amazon_dns, config.imds, config.time_sync,
                                  where="collectors.ebpf.dns", pod_identity=config.pod_identity)


def service_codes(addresses: ServiceAddresses) -> dict[Address, int]:
    """Every configured address → resolver class | link-local service << 4 (0: neither)."""
    every = (addresses.cluster_dns | addresses.node_local_dns | addresses.amazon_dns
             | addresses.imds | addresses.time_sync | addresses.pod_identity)
    codes = {}
    for address in every:
        service = addresses.link_local_service(address) or addresses.node_service(address)
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


def event_defines(formats: Formats, config: Any) -> dict[str, Any]:
    """The event program's (events.c): the same classifiers, its table size and the
    NXDOMAIN burst threshold."""
    from otel_netreceiver.bpf.probes.dns.events import EV_PENDING, NX_BURST, NX_WINDOW_NS

    return {**defines(formats, config), "EV_DNS_PENDING": EV_PENDING, "NX_BURST": NX_BURST,
            "NX_WINDOW_NS": f"{NX_WINDOW_NS}ULL"}


# the event program's socket programs, and dnsev_tcp_next in dnsev_next[0]: the tail call
# of its TCP walk (events.c: the second and later messages of a segment)
event_finish = attacher("dnsev", tail_calls=(("dnsev_next", "dnsev_tcp_next"),))
# ProbeSpec.finish: the socket programs on the cgroup v2 root, or dns_skb called by the
# composite's entries when another socket-hook probe is on (bpf/compose_hooks.py); either
# way dns_tcp_next goes into dns_next[0], the tail call of the TCP walk (counting.c: the
# second and later messages of a segment)
finish = attacher("dns", "dns_skb", tail_calls=(("dns_next", "dns_tcp_next"),))
