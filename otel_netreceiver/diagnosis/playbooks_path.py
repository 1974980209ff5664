"""What happened on the path, told apart: delay and reordering, loss, a full listener, an MTU
black hole, a firewall.

A retransmission is not proof of loss. Linux tells the cases apart itself
(net/ipv4/tcp_input.c): the peer reports segments it received twice with a duplicate SACK
(TCPDSACKRecv), a recovery proven unnecessary is undone (TCPDSACKUndo, TCPFullUndo,
TCPSpuriousRTOs), reordering is detected by SACK or timestamps (TCPSACKReorder,
TCPTSReorder). A path that delays or reorders makes TCP retransmit what arrives anyway;
these rules read those counters so such a path is not reported as loss, and its PAWS
rejects are not reported as NAT. SYN retransmissions to a server that overflows its accept
queue are the server's problem, not the path's. IPv4/IPv6 fragmentation failures on a hop
of this node with TCP timeouts are a path-MTU black hole (RFC 1191, RFC 8201).

These rules supersede (``Rule.supersedes``) the generic loss and timeout findings they
explain, for the same pod; links.py names the other pod when the cause is on this node.
"""

from __future__ import annotations

from otel_netreceiver.diagnosis.model import Condition, Op, Rule, Scope, Signal
from otel_netreceiver.diagnosis.playbooks import RETRANS_RATIO, SOCKET

NODE = frozenset({"node"})
SPURIOUS_RATIO = 0.5  # duplicate-SACKed / retransmitted segments: most were not needed
# a tail loss probe answered by one DSACK on a clean path is a ratio of 1: a few are noise
MIN_SPURIOUS = 5
TIMEOUT_EVENTS = 2  # retransmission timeouts in the window beyond a stray one or two
MIN_RETRANS = 10
SYN_SHARE = 0.5  # SYN retransmits / all retransmits: the handshake, not the data path
LOSS_HIDDEN = frozenset({"tcp_packet_loss", "tcp_timeouts"})



def _pod(metric: str) -> Signal:
    return Signal(metric, Scope.POD)


RETRANS = _pod("netreceiver.tcp.retrans_segs")
SPURIOUS = Condition(_pod("netreceiver.tcp.dsack_recv"), Op.RATIO, above=SPURIOUS_RATIO,
                     of=RETRANS)
SYN_DOMINATED = Condition(_pod("netreceiver.tcp.syn_retrans"), Op.RATIO, above=SYN_SHARE,
                          of=RETRANS)
LOSSY = Condition(RETRANS, Op.RATIO, above=RETRANS_RATIO, of=_pod("netreceiver.tcp.out_segs"))
REORDER_EVIDENCE = tuple(_pod(f"netreceiver.tcp.{name}") for name in (
    "dsack_recv", "dsack_old_sent", "dsack_undo", "full_undo", "partial_undo", "loss_undo",
    "spurious_rtos", "sack_reorder", "ts_reorder", "reno_reorder", "paws_estab",
    "ack_skipped_paws", "timeouts"))


def _mtu_rule(rule_id: str, family: str, fails: str, too_big: str) -> Rule:
    return Rule(
        rule_id, "mtu_black_hole", "warning", SOCKET | NODE,
        (_pod("netreceiver.tcp.timeouts"), LOSSY),
        f"{family} packets too big for a hop on this node were not forwarded (fragmentation "
        "failed: don't-fragment set, larger than the next hop's MTU) while your pod's TCP "
        "connections timed out: the ICMP message that should lower the sender's path MTU "
        "did not get through, so large segments are dropped again and again (a path-MTU "
        "black hole). Small requests work, large transfers stall.",
        "Let ICMP 'fragmentation needed' (IPv4 type 3 code 4) and ICMPv6 'packet too big' "
        "through security groups, network ACLs and node or pod firewalls; make MTUs agree "
        "along the path (tunnels and VPNs are smaller); or clamp the MSS to the path MTU, "
        "or set net.ipv4.tcp_mtu_probing=1.",
        "Linux forwarding: IPSTATS_MIB_FRAGFAILS in ip_forward (net/ipv4/ip_forward.c) and "
        "ip6_forward (net/ipv6/ip6_output.c); RFC 1191 and RFC 8201 (path MTU discovery)",
        all_of=(Signal(fails, Scope.ALL),),
        also=(Signal(too_big, Scope.ALL),
              Signal("netreceiver.packet.drop_sites", Scope.NODE, (),
                     ("drop.reason", "drop.location")),
              RETRANS),
        supersedes=LOSS_HIDDEN)


PATH_RULES: tuple[Rule, ...] = (
    Rule("path.delay_or_reordering", "path_delay_or_reordering", "warning", SOCKET | NODE,
         (SPURIOUS,),
         "Your pod's TCP segments arrived late or out of order, not lost: the peer reported "
         "most retransmitted segments as duplicates (DSACK), so TCP retransmitted what was "
         "still on its way. The path delays or reorders packets (a long or variable delay).",
         "Find the delay on the path: a congested or shaped link, an overloaded middlebox or "
         "NAT gateway, an overlay or VPN with variable latency, or flows split over paths of "
         "different length. Do not chase packet loss or NAT: nothing was lost.",
         "ACK Net Exporter guide latency jitter playbook; Linux TCP duplicate SACK and undo "
         "(net/ipv4/tcp_input.c), RFC 2883",
         all_of=(Condition(_pod("netreceiver.tcp.dsack_recv"), above=MIN_SPURIOUS),),
         also=REORDER_EVIDENCE,
         supersedes=LOSS_HIDDEN | {"paws_or_syn_recv_ack_skipped"}),
    Rule("tcp.retransmission_timeouts", "tcp_packet_loss", "warning", SOCKET,
         (Condition(_pod("netreceiver.tcp.timeouts"), above=TIMEOUT_EVENTS),),
         "Your pod's TCP connections hit repeated retransmission timeouts with real "
         "retransmissions (not duplicates): packets to or from one of its peers were lost. "
         "Its overall retransmission ratio may look small when other peers are healthy.",
         "Find the peer whose requests time out (the SDK's errors, or netreceiver.pod.tcp."
         "retransmits by peer with collectors.ebpf.retrans_peers) and look for drops on that "
         "path: netfilter rules, the ENA allowances, interface drops.",
         "ACK Net Exporter guide Nginx and latency jitter playbooks: tcpexttcptimeouts, "
         "tcpretranssegs",
         all_of=(Condition(RETRANS, above=MIN_RETRANS),),
         also=(RETRANS, _pod("netreceiver.tcp.out_segs"), _pod("netreceiver.tcp.dsack_recv")),
         supersedes=frozenset({"tcp_timeouts"})),
    Rule("tcp.syn_retransmits", "syn_retransmits", "warning", SOCKET,
         (SYN_DOMINATED,),
         "Most of your pod's TCP retransmissions were SYNs: connection attempts the server "
         "did not answer (its accept queue full, its listener gone behind a firewall that "
         "drops, or SYNs dropped on the way). The data path itself is not losing packets.",
         "Look at the server: its listen overflows, its firewall, whether it runs; raise its "
         "backlog (listen(), net.core.somaxconn) and accept faster.",
         "ACK Net Exporter guide Nginx 499/502 playbook and case 2: TcpExt TCPSynRetrans",
         # a client's: a server's SYN-ACK retransmits count in TCPSynRetrans too
         all_of=(_pod("netreceiver.tcp.active_opens"),),
         also=(_pod("netreceiver.tcp.syn_retrans"), _pod("netreceiver.tcp.active_opens"),
               _pod("netreceiver.tcp.attempt_fails"), _pod("netreceiver.tcp.timeouts")),
         supersedes=LOSS_HIDDEN),
    _mtu_rule("path.mtu_black_hole", "IPv4", "netreceiver.ip.frag_fails",
              "netreceiver.icmp.out_dest_unreachs"),
    _mtu_rule("path.mtu_black_hole6", "IPv6", "netreceiver.ipv6.frag_fails",
              "netreceiver.icmp6.out_pkt_too_bigs"),
)
