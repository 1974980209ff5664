"""The kernel counters of each network namespace that the pod collector exports (the ACK
Net Exporter set; docs/background.md, "Per-pod kernel counters").

Rows of the one catalogue (catalogue.py merges them), kept apart because they are
a table over procfs fields: (file section, kernel field) → metric. Names mirror the
kernel's so a user can go from `nstat` to PromQL: ``TcpExt ListenOverflows`` is
``netreceiver.tcp.listen_overflows``, ``TCPAbortOnTimeout`` is
``netreceiver.tcp.abort_on_timeout``. Every row says which file it comes from.

Scope: these counters are kept per network namespace by the kernel (net->mib), so
they are exported per pod. Node-wide numbers (softnet, slab, sockstat memory and
orphans, conntrack limits) are in NODE_KERNEL_ROWS and exported once per node.
"""

from __future__ import annotations

import re

from otel_netreceiver.model import Kind

_C, _G = Kind.COUNTER, Kind.GAUGE

# (section in snmp/netstat/snmp6, kernel field, kind, unit, what it counts)
NETNS_FIELDS: tuple[tuple[str, str, Kind, str, str], ...] = (
    # /proc/<pid>/net/snmp "Tcp:" (RFC 4022 MIB, net/ipv4/proc.c)
    ("Tcp", "ActiveOpens", _C, "{connection}", "connections opened by this side (SYN sent)"),
    ("Tcp", "PassiveOpens", _C, "{connection}", "connections accepted (handshake completed)"),
    ("Tcp", "AttemptFails", _C, "{connection}", "connection attempts that failed"),
    ("Tcp", "EstabResets", _C, "{connection}", "established connections reset"),
    ("Tcp", "CurrEstab", _G, "{connection}", "connections now ESTABLISHED or CLOSE_WAIT"),
    ("Tcp", "InSegs", _C, "{segment}", "segments received"),
    ("Tcp", "OutSegs", _C, "{segment}", "segments sent"),
    ("Tcp", "RetransSegs", _C, "{segment}", "segments retransmitted"),
    ("Tcp", "InErrs", _C, "{segment}", "segments received in error"),
    ("Tcp", "OutRsts", _C, "{segment}", "resets sent"),
    ("Tcp", "InCsumErrors", _C, "{segment}", "segments with a bad checksum"),
    # "Udp:"
    ("Udp", "InDatagrams", _C, "{datagram}", "UDP datagrams delivered to sockets"),
    ("Udp", "NoPorts", _C, "{datagram}", "UDP datagrams to a port nobody listens on"),
    ("Udp", "InErrors", _C, "{datagram}", "UDP datagrams that could not be delivered"),
    ("Udp", "OutDatagrams", _C, "{datagram}", "UDP datagrams sent"),
    ("Udp", "RcvbufErrors", _C, "{datagram}", "UDP datagrams dropped: socket receive buffer full"),
    ("Udp", "SndbufErrors", _C, "{datagram}", "UDP sends failed: no send buffer"),
    ("Udp", "InCsumErrors", _C, "{datagram}", "UDP datagrams with a bad checksum"),
    ("Udp", "IgnoredMulti", _C, "{datagram}", "multicast UDP datagrams ignored"),
    # "Ip:" and "Icmp:"
    ("Ip", "InReceives", _C, "{packet}", "IPv4 packets received"),
    ("Ip", "InHdrErrors", _C, "{packet}", "IPv4 packets with header errors"),
    ("Ip", "InAddrErrors", _C, "{packet}", "IPv4 packets with a bad destination address"),
    ("Ip", "InDiscards", _C, "{packet}", "IPv4 packets discarded on input (no buffer)"),
    ("Ip", "OutRequests", _C, "{packet}", "IPv4 packets sent"),
    ("Ip", "OutDiscards", _C, "{packet}", "IPv4 packets discarded on output"),
    ("Ip", "OutNoRoutes", _C, "{packet}", "IPv4 packets without a route"),
    ("Ip", "FragFails", _C, "{packet}",
     "IPv4 packets too big for the next hop and not fragmented (DF set): each sends an ICMP "
     "frag-needed back"),
    ("Icmp", "InMsgs", _C, "{message}", "ICMP messages received"),
    ("Icmp", "InErrors", _C, "{message}", "ICMP messages received in error"),
    ("Icmp", "InDestUnreachs", _C, "{message}", "ICMP destination-unreachable received"),
    ("Icmp", "OutMsgs", _C, "{message}", "ICMP messages sent"),
    ("Icmp", "OutDestUnreachs", _C, "{message}", "ICMP destination-unreachable sent"),
    # /proc/<pid>/net/netstat "TcpExt:" (include/uapi/linux/snmp.h LINUX_MIB_*)
    ("TcpExt", "ListenOverflows", _C, "{connection}", "accept queue full: SYN or ACK dropped"),
    ("TcpExt", "ListenDrops", _C, "{connection}", "connections dropped by a listener"),
    ("TcpExt", "TCPAbortOnTimeout", _C, "{connection}", "connections aborted after timeouts"),
    ("TcpExt", "TCPAbortOnLinger", _C, "{connection}", "reset by linger in FIN_WAIT2"),
    ("TcpExt", "TCPAbortOnClose", _C, "{connection}", "reset on close with unread data"),
    ("TcpExt", "TCPAbortOnMemory", _C, "{connection}", "reset because of TCP memory pressure"),
    ("TcpExt", "TCPAbortOnData", _C, "{connection}", "reset on data after close"),
    ("TcpExt", "TCPAbortFailed", _C, "{connection}", "resets that could not be sent"),
    ("TcpExt", "TCPACKSkippedSynRecv", _C, "{segment}", "ACKs not sent in SYN_RECV (rate limit)"),
    ("TcpExt", "TCPACKSkippedPAWS", _C, "{segment}", "ACKs not sent after a PAWS check"),
    ("TcpExt", "TCPACKSkippedSeq", _C, "{segment}", "ACKs not sent for out-of-window segments"),
    ("TcpExt", "TCPACKSkippedChallenge", _C, "{segment}", "challenge ACKs not sent"),
    ("TcpExt", "TCPACKSkippedTimeWait", _C, "{segment}", "ACKs not sent in TIME_WAIT"),
    ("TcpExt", "TCPACKSkippedFinWait2", _C, "{segment}", "ACKs not sent in FIN_WAIT2"),
    ("TcpExt", "PAWSEstab", _C, "{segment}", "segments dropped by PAWS in ESTABLISHED"),
    ("TcpExt", "TCPRcvQDrop", _C, "{segment}", "segments dropped: receive queue memory"),
    ("TcpExt", "TCPBacklogDrop", _C, "{segment}", "segments dropped: socket backlog full"),
    ("TcpExt", "TCPZeroWindowDrop", _C, "{segment}", "segments dropped: zero receive window"),
    ("TcpExt", "TCPOFODrop", _C, "{segment}", "out-of-order segments dropped"),
    ("TcpExt", "TCPRetransFail", _C, "{segment}", "retransmissions that failed"),
    ("TcpExt", "TCPSynRetrans", _C, "{segment}", "SYN and SYN-ACK retransmissions"),
    ("TcpExt", "TCPFastRetrans", _C, "{segment}", "fast retransmissions"),
    ("TcpExt", "TCPTimeouts", _C, "{event}", "retransmission timeouts"),
    ("TcpExt", "TCPLossProbes", _C, "{segment}", "tail loss probes sent"),
    # spurious retransmission and reordering: what separates a slow or reordering path
    # from a lossy one (net/ipv4/tcp_input.c, tcp_check_sack_reordering, tcp_try_undo_*)
    ("TcpExt", "TCPDSACKRecv", _C, "{segment}",
     "duplicate SACKs received: the peer already had a segment sent again (spurious)"),
    ("TcpExt", "TCPDSACKOfoRecv", _C, "{segment}", "duplicate SACKs received out of order"),
    ("TcpExt", "TCPDSACKOldSent", _C, "{segment}",
     "duplicate SACKs sent: the peer sent again what this side already had"),
    ("TcpExt", "TCPDSACKUndo", _C, "{event}", "recoveries undone by DSACKs: nothing was lost"),
    ("TcpExt", "TCPFullUndo", _C, "{event}", "recoveries fully undone: the loss was spurious"),
    ("TcpExt", "TCPPartialUndo", _C, "{event}", "recoveries partly undone"),
    ("TcpExt", "TCPLossUndo", _C, "{event}", "timeout recoveries undone"),
    ("TcpExt", "TCPSpuriousRTOs", _C, "{event}", "retransmission timeouts found spurious"),
    ("TcpExt", "TCPSACKReorder", _C, "{event}", "reordering detected by SACK"),
    ("TcpExt", "TCPTSReorder", _C, "{event}", "reordering detected by timestamps"),
    ("TcpExt", "TCPRenoReorder", _C, "{event}", "reordering detected without SACK"),
    ("TcpExt", "TCPLostRetransmit", _C, "{segment}", "retransmissions lost again"),
    ("TcpExt", "TCPReqQFullDrop", _C, "{connection}", "SYNs dropped: SYN queue full, no cookies"),
    ("TcpExt", "TCPReqQFullDoCookies", _C, "{connection}", "SYN cookies sent: SYN queue full"),
    ("TcpExt", "SyncookiesSent", _C, "{connection}", "SYN cookies sent"),
    ("TcpExt", "SyncookiesFailed", _C, "{connection}", "invalid SYN cookies received"),
    ("TcpExt", "EmbryonicRsts", _C, "{connection}", "resets received in SYN_RECV"),
    ("TcpExt", "TCPMemoryPressures", _C, "{event}", "times TCP entered memory pressure"),
    ("TcpExt", "PruneCalled", _C, "{event}", "receive queue prunes under memory pressure"),
    ("TcpExt", "TW", _C, "{connection}", "TIME_WAIT sockets that finished their timer"),
    # "IpExt:"
    ("IpExt", "InOctets", _C, "By", "IP bytes received"),
    ("IpExt", "OutOctets", _C, "By", "IP bytes sent"),
    ("IpExt", "InNoRoutes", _C, "{packet}", "IP packets dropped: no route"),
    # /proc/<pid>/net/snmp6 (net/ipv6/proc.c)
    ("Ip6", "Ip6InReceives", _C, "{packet}", "IPv6 packets received"),
    ("Ip6", "Ip6InDiscards", _C, "{packet}", "IPv6 packets discarded on input"),
    ("Ip6", "Ip6OutDiscards", _C, "{packet}", "IPv6 packets discarded on output"),
    ("Ip6", "Ip6OutNoRoutes", _C, "{packet}", "IPv6 packets without a route"),
    ("Ip6", "Udp6InDatagrams", _C, "{datagram}", "UDP over IPv6 datagrams delivered"),
    ("Ip6", "Udp6NoPorts", _C, "{datagram}", "UDP over IPv6 datagrams to a closed port"),
    ("Ip6", "Udp6InErrors", _C, "{datagram}", "UDP over IPv6 datagrams not delivered"),
    ("Ip6", "Udp6RcvbufErrors", _C, "{datagram}", "UDP over IPv6 drops: receive buffer full"),
    ("Ip6", "Udp6SndbufErrors", _C, "{datagram}", "UDP over IPv6 sends failed: no buffer"),
    ("Ip6", "Udp6OutDatagrams", _C, "{datagram}", "UDP over IPv6 datagrams sent"),
    ("Ip6", "Icmp6InErrors", _C, "{message}", "ICMPv6 messages received in error"),
    ("Ip6", "Ip6FragFails", _C, "{packet}", "IPv6 packets that needed fragmenting and failed"),
    ("Ip6", "Icmp6InPktTooBigs", _C, "{message}", "ICMPv6 packet-too-big received"),
    ("Ip6", "Icmp6OutPktTooBigs", _C, "{message}",
     "ICMPv6 packet-too-big sent: a packet was too big for the next hop"),
)

_PREFIX = {"Tcp": "tcp", "TcpExt": "tcp", "Udp": "udp", "Ip": "ip", "IpExt": "ip", "Icmp": "icmp"}
_IPV6 = re.compile(r"^(Ip6|Udp6|Icmp6)")


def snake(field: str) -> str:
    """``TCPAbortOnTimeout`` → ``abort_on_timeout``; ``PAWSEstab`` → ``paws_estab``."""
    name = field.removeprefix("TCP") if field.startswith("TCP") and field != "TCP" else field
    name = name.replace("RTOs", "Rtos")  # TCPSpuriousRTOs → spurious_rtos, not spurious_rt_os
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def metric_name(section: str, field: str) -> str:
    if section == "Ip6":
        proto = {"Ip6": "ipv6", "Udp6": "udp6", "Icmp6": "icmp6"}[_IPV6.match(field).group(1)]  # type: ignore[union-attr]
        return f"netreceiver.{proto}.{snake(_IPV6.sub('', field))}"
    return f"netreceiver.{_PREFIX[section]}.{snake(field)}"
