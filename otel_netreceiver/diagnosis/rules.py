"""The correlation playbooks, as one table (EKS network guide, ACK Net Exporter guide).

Each row names the guide passage it encodes (its ``source``). Rules are tried in this order and the
findings sorted by severity, so the first finding is the verdict. Signals use the
catalogue's metric names (tests check every name against otel_netreceiver/catalogue.py).
"""

from __future__ import annotations

from otel_netreceiver.diagnosis.model import Rule, Scope, Signal
from otel_netreceiver.diagnosis.playbooks import NODE_PLAYBOOKS
from otel_netreceiver.diagnosis.playbooks_dns import DETAIL_SIGNALS as DNS_DETAIL_SIGNALS
from otel_netreceiver.diagnosis.playbooks_dns import DNS_DETAILS, DNS_EBPF_RULES, catalogued
from otel_netreceiver.diagnosis.playbooks_latency import LATENCY_RULES
from otel_netreceiver.diagnosis.playbooks_path import PATH_RULES
from otel_netreceiver.diagnosis.playbooks_peers import DETAIL_SIGNALS as PEER_DETAIL_SIGNALS
from otel_netreceiver.diagnosis.playbooks_peers import PEER_DETAILS
from otel_netreceiver.diagnosis.talkers import Detail

ENA = "aws.ena.allowance.exceeded"
IFACE = ("network.interface.name",)
RESETS = "netreceiver.pod.tcp.resets"
DROPS = "netreceiver.pod.packet.drops"
DNS, SOCKET = frozenset({"dns"}), frozenset({"socket"})
BOTH = DNS | SOCKET
RESET_ERRORS = frozenset({"ECONNRESET", "EPIPE", "ECONNABORTED"})
STALL_ERRORS = frozenset({"ETIMEDOUT", "timeout", "ECONNREFUSED", "EAGAIN"})


# Reasons every healthy node frees packets for (an orderly TCP close frees segments as
# NOT_SPECIFIED, a closed socket's unread queue as QUEUE_PURGE; duplicates and foreign-host
# frames are routine): the same list as
# deploy/rules/ebpf.rules.yaml's PodPacketDrops. enum skb_drop_reason, include/net/dropreason-core.h
NORMAL_DROPS = tuple(("drop.reason", r) for r in (
    "NOT_SPECIFIED", "SOCKET_FILTER", "OTHERHOST", "TCP_OLD_DATA", "TCP_OLD_ACK",
    "IPV6DISABLED", "UNHANDLED_PROTO", "QUEUE_PURGE"))


def _ena(allowance: str) -> Signal:
    return Signal(ENA, Scope.NODE, (("aws.ena.allowance", allowance),), IFACE)


RULES: tuple[Rule, ...] = (
    Rule("dns.eni_linklocal", "dns_throttled_at_eni", "critical", DNS,
         (_ena("linklocal"),),
         "The ENI dropped link-local packets in this window: DNS queries to the Amazon "
         "resolver (169.254.169.253 / VPC+2) were throttled at 1024 packets/s per ENI, so "
         "lookups lost packets and timed out.",
         "Run NodeLocal DNSCache so each node answers its own lookups, add CoreDNS replicas "
         "spread over more nodes (each node's ENI has its own allowance), and cut query "
         "volume: ndots:2 or fully qualified names, client-side caching.",
         "EKS network guide: DNS throttling at the ENI, linklocal_allowance_exceeded"),
    # the dns probe's view of a lookup (issue 14): before the UDP-counter rules, so its
    # late-answer finding (resolver class, how late) is the one kept for case 1
    *catalogued(DNS_EBPF_RULES),
    Rule("conntrack.exhausted", "conntrack_exhausted", "critical", BOTH,
         (_ena("conntrack"),
          Signal("netreceiver.conntrack.insert_failed", Scope.HOST),
          Signal("netreceiver.conntrack.drop", Scope.HOST),
          Signal("netreceiver.conntrack.insert_failed", Scope.POD),
          Signal("netreceiver.conntrack.drop", Scope.POD)),
         "Connection tracking was full in this window (the instance's conntrack allowance or "
         "the kernel's nf_conntrack table): new flows, DNS over UDP among them, were dropped.",
         "Check conntrack_allowance_available and nf_conntrack_max; use a larger instance "
         "type or spread the load, shorten conntrack timeouts for short-lived UDP, and avoid "
         "DNAT for DNS (NodeLocal DNSCache with NOTRACK).",
         "EKS network guide: conntrack_allowance_exceeded; the ACK Net Exporter guide DNS "
         "playbook: conntrack insert "
         "failures"),
    Rule("udp.receive_buffer", "udp_receive_buffer_overflow", "warning", BOTH,
         (Signal("netreceiver.udp.rcvbuf_errors", Scope.POD),
          Signal("netreceiver.udp6.rcvbuf_errors", Scope.POD)),
         "Your pod's UDP sockets dropped datagrams because their receive buffer was full: "
         "the application did not read fast enough.",
         "Read the socket faster (a dedicated reader thread), raise SO_RCVBUF (and "
         "net.core.rmem_max), or shed load.",
         "ACK Net Exporter guide DNS playbook: UDP RcvbufErrors of the pod",
         transports=frozenset({"udp", ""}),
         also=(Signal("netreceiver.pod.packet.drops", Scope.POD, group_by=("drop.reason",)),)),
    Rule("udp.no_listener", "udp_no_listener", "warning", DNS,
         (Signal("netreceiver.udp.no_ports", Scope.POD),
          Signal("netreceiver.udp6.no_ports", Scope.POD)),
         "Datagrams reached your pod for a port nobody listened on any more: DNS answers "
         "arrived after the client had given up and closed its socket (the resolver answered "
         "slower than the client's timeout).",
         "Find why the DNS server is slow (upstream, CoreDNS CPU throttling), and make the "
         "client's timeout longer than the server's answer time.",
         "ACK Net Exporter guide DNS playbook and case 1: DNS answer slower than the client "
         "timeout"),
    Rule("tcp.reset", "reset_by_peer", "warning", SOCKET,
         (Signal(RESETS, Scope.POD, (("tcp.reset.direction", "received"),), ("tcp.state",)),),
         "Your pod received TCP resets in this window: the peer (or something on the path) "
         "aborted the connection.",
         "Look at the reset reason the kernel gave on the sending side (below when the sender "
         "is on this node): no_socket means the peer had no connection (closed, restarted, "
         "or a NAT/conntrack entry expired while idle); keep idle times below the NAT and "
         "load balancer idle timeouts, or use TCP keepalive.",
         "ACK Net Exporter guide TCP reset playbook",
         error_types=RESET_ERRORS | frozenset({"ECONNREFUSED"}),
         also=(Signal(RESETS, Scope.ALL, (("tcp.reset.direction", "sent"),),
                      ("tcp.reset.reason", "tcp.state")),
               Signal("netreceiver.tcp.estab_resets", Scope.POD))),
    Rule("tcp.listen_overflow", "listen_overflow", "warning", SOCKET,
         (Signal("netreceiver.tcp.listen_overflows", Scope.POD),
          Signal("netreceiver.tcp.listen_drops", Scope.POD),
          Signal("netreceiver.tcp.listen_overflows", Scope.ALL),
          Signal("netreceiver.tcp.listen_drops", Scope.ALL)),
         "A listening socket on this node overflowed its accept queue: connection attempts "
         "were dropped while the server did not accept fast enough.",
         "Check the server's accept loop (GC pauses, CPU throttling), raise the backlog "
         "(listen(), net.core.somaxconn) and add replicas. The handshake ACKs the kernel "
         "drops at a full queue are counted as NO_SOCKET drops (at cookie_v4_check or "
         "cookie_v6_check when SYN cookies are on): the queue was full, the listener was "
         "there.",
         "ACK Net Exporter guide Nginx 499/502 playbook and case 2: listen drops during Java GC",
         error_types=STALL_ERRORS,
         also=(Signal("netreceiver.pod.packet.drops", Scope.POD, (("drop.reason", "NO_SOCKET"),)),
               Signal("netreceiver.tcp.syncookies_sent", Scope.POD)),
         # what a full queue does to its own pod: NO_SOCKET drops of handshake ACKs, resets
         # for the connections it dropped, SYN-ACKs sent again
         supersedes=frozenset({"packets_for_no_socket", "resets_sent", "syn_retransmits"})),
    Rule("drops.firewall", "firewall_drops", "warning", BOTH,
         (Signal(DROPS, Scope.POD, (("drop.reason", "NETFILTER_DROP"),)),),
         "Netfilter dropped or rejected packets of your pod (drop reason NETFILTER_DROP): an "
         "iptables or nftables rule, a NetworkPolicy, or conntrack refusing invalid packets. "
         "A REJECT rule also answers the sender with a reset or an ICMP error.",
         "List the rules that match (nft list ruleset, iptables-save with counters) in the "
         "pod's namespace and on the node, and the NetworkPolicies that select the pod.",
         "ACK Net Exporter guide packetloss probe: NETFILTER_DROP"),
    Rule("drops.no_socket", "packets_for_no_socket", "info", SOCKET,
         (Signal(DROPS, Scope.POD, (("drop.reason", "NO_SOCKET"),)),),
         "Packets reached your pod for which it had no socket: a port nobody listened on, or "
         "a connection it had already closed.",
         "Check the ports your Service and clients use against what the pod listens on; "
         "stray segments after a close are harmless in small numbers.",
         "ACK Net Exporter guide packetloss probe: NO_SOCKET"),
    Rule("drops", "packets_dropped", "info", BOTH,
         (Signal(DROPS, Scope.POD, group_by=("drop.reason",),
                 exclude=(*NORMAL_DROPS, ("drop.reason", "NETFILTER_DROP"),
                          ("drop.reason", "NO_SOCKET"))),),
         "The kernel dropped packets of your pod in this window; the drop reasons are in the "
         "evidence.",
         "Read the drop reason: socket buffer, netfilter, routing or checksum reasons each "
         "point to a different fix (docs/playbooks.md).",
         "ACK Net Exporter guide packetloss probe"),
    *NODE_PLAYBOOKS,  # DNS, Nginx, resets, jitter, ENA allowances, the customer cases
    *PATH_RULES,  # delay and reordering, SYN retransmits, MTU black holes
    *LATENCY_RULES,  # where the delay is: the node's stack, a socket queue, the path
)


# diagnose names the pods behind these rules' findings (talkers.py)
DETAILS: dict[str, Detail] = {**DNS_DETAILS, **PEER_DETAILS}
DETAIL_SIGNALS = (*DNS_DETAIL_SIGNALS, *PEER_DETAIL_SIGNALS)


def metric_names() -> set[str]:
    """Every metric the rules and their details read: what the agent's history keeps."""
    return ({s.metric for rule in RULES for s in rule.signals()}
            | {s.metric for s in DETAIL_SIGNALS})
