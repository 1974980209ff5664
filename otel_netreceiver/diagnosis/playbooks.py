"""The node playbooks of the EKS network and ACK Net Exporter guides as rules:
DNS, Nginx 499/502/503/504, TCP resets, latency jitter, ENA allowances, and the four customer
cases of the ACK Net Exporter guide as named patterns.

rules.py appends these to its table. Every signal is a catalogue metric the agent already
collects; the history keeps exactly the metrics the table reads. Thresholds are deliberately
low for counters that a healthy pod never moves (errors, drops, aborts: any increase is a
finding) and ratios or levels for counters that move in normal operation (retransmissions,
throttled periods, queued bytes).

CoreDNS: a pod is a CoreDNS pod when its k8s-app label is kube-dns. Labels are attributes only
in verbose mode (collectors.podnet.verbose with labels [k8s-app]); without them the node-level
CoreDNS rule has nothing to match, and a CoreDNS pod's own UDP errors still show in
``diagnose`` as findings of that pod (the pod rules below run over every pod).

Case 3 of the ACK Net Exporter guide (virtio command latency, probe virtcmdlat) has no rule:
the catalogue has no virtio latency metric.
"""

from __future__ import annotations

from otel_netreceiver.diagnosis.model import Condition, Op, Rule, Scope, Signal

DNS, SOCKET, NODE = frozenset({"dns"}), frozenset({"socket"}), frozenset({"node"})
BOTH = DNS | SOCKET
COREDNS = (("k8s.pod.label.k8s-app", "kube-dns"),)
UDP4_RCV = (("drop.location", "__udp4_lib_rcv"),)
STALL_ERRORS = frozenset({"ETIMEDOUT", "timeout", "ECONNREFUSED", "EAGAIN"})
RESET_ERRORS = frozenset({"ECONNRESET", "EPIPE", "ECONNABORTED", "ECONNREFUSED"})
QUEUE_BYTES = 64 * 1024  # bytes queued on established sockets that mean "not being read"
RETRANS_RATIO = 0.02  # retransmitted / sent segments: 2 % is loss, not noise
THROTTLED_RATIO = 0.1  # throttled / enforced CFS periods
SOFTIRQ_SECONDS = 0.01  # p99 NET_RX/NET_TX softirq delay or run time


def _pod(metric: str, *match: tuple[str, str], group_by: tuple[str, ...] = ()) -> Signal:
    return Signal(metric, Scope.POD, tuple(match), group_by)


def _ena(allowance: str) -> Signal:
    return Signal("aws.ena.allowance.exceeded", Scope.NODE, (("aws.ena.allowance", allowance),),
                  ("network.interface.name",))


def _queued(direction: str, scope: Scope = Scope.POD) -> Signal:
    return Signal("netreceiver.tcp.queued", scope, (("network.io.direction", direction),))


def _conns(state: str) -> Signal:
    return _pod("netreceiver.tcp.connections", ("tcp.state", state))


SENT_RESETS = _pod("netreceiver.pod.tcp.resets", ("tcp.reset.direction", "sent"),
                   group_by=("tcp.state", "tcp.reset.reason"))
THROTTLED = Condition(_pod("netreceiver.pod.cpu.throttled_periods"), Op.RATIO,
                      above=THROTTLED_RATIO, of=_pod("netreceiver.pod.cpu.periods"))
UDP4_DROPS = Signal("netreceiver.packet.drop_sites", Scope.NODE, UDP4_RCV, ("drop.reason",))

DNS_RULES: tuple[Rule, ...] = (
    Rule("dns.udp_send_errors", "udp_send_failed", "warning", DNS,
         (_pod("netreceiver.udp.sndbuf_errors"), _pod("netreceiver.udp6.sndbuf_errors")),
         "Your pod's UDP sends failed in the network layer (SndbufErrors): the query never "
         "left, so the lookup waited for an answer to a packet that was not sent.",
         "Look at socket memory (net.ipv4.udp_mem, the node's UDP memory) and the pod's "
         "send rate; raise SO_SNDBUF or send fewer queries (ndots, caching).",
         "ACK Net Exporter guide DNS playbook: inspector_pod_udpsndbuferrors"),
    Rule("dns.udp_checksum_errors", "udp_checksum_errors", "warning", DNS,
         (_pod("netreceiver.udp.in_csum_errors"),),
         "UDP datagrams for your pod failed their checksum (InCsumErrors) and were "
         "discarded: answers arrived corrupt and were lost.",
         "Corrupt packets on the path: check the NIC's checksum offload, the tunnel or "
         "overlay, and any middlebox rewriting packets.",
         "ACK Net Exporter guide DNS playbook: inspector_pod_udpincsumerrors, "
         "inspector_pod_udpinerrors",
         # InErrors also counts every RcvbufErrors (udp_queue_rcv_one_skb): it is evidence
         # here, never a finding of its own, or a full buffer would be reported twice.
         also=(_pod("netreceiver.udp.in_errors"),)),
    Rule("dns.coredns_udp_errors", "coredns_dropping_queries", "critical", BOTH,
         (Signal("netreceiver.udp.rcvbuf_errors", Scope.ALL, COREDNS),
          Signal("netreceiver.udp.in_errors", Scope.ALL, COREDNS),
          Signal("netreceiver.udp.sndbuf_errors", Scope.ALL, COREDNS)),
         "The CoreDNS pods on this node (label k8s-app=kube-dns) lost UDP datagrams: queries "
         "were dropped before CoreDNS read them, or its answers failed to send.",
         "CoreDNS is not reading fast enough: check its CPU limit and throttling, add "
         "replicas, or run NodeLocal DNSCache so fewer queries reach it.",
         "ACK Net Exporter guide DNS playbook: observe the same counters on the CoreDNS pods"),
    Rule("case1.dns_answer_after_timeout", "dns_answer_after_client_timeout", "warning", DNS,
         (_pod("netreceiver.udp.no_ports"),),
         "Case 1 of the ACK Net Exporter guide: an answer reached your pod for a port that was "
         "already closed "
         "and the kernel dropped it in __udp4_lib_rcv: the DNS server answered after the "
         "client had timed out.",
         "The resolver is slow (often an upstream DNS on the internet): point the pod at "
         "CoreDNS or NodeLocal DNSCache, or make the client's timeout longer.",
         "ACK Net Exporter guide, case 1: udpnoports +1 and packetloss at __udp4_lib_rcv",
         all_of=(UDP4_DROPS,), pattern="case 1: DNS answer slower than the client timeout"),
)

NGINX_RULES: tuple[Rule, ...] = (
    Rule("case2.accept_stall", "accept_queue_full_while_server_stalled", "warning", SOCKET,
         (_pod("netreceiver.tcp.listen_overflows"),),
         "Case 2 of the ACK Net Exporter guide: your pod's accept queue overflowed "
         "(ListenOverflows with "
         "ListenDrops): connections kept arriving while the server did not accept them, as a "
         "Java GC pause or a stalled event loop does.",
         "Find the stall (GC logs, CPU throttling below), raise the backlog (server setting "
         "and net.core.somaxconn), and tune the server's accept and worker settings.",
         "ACK Net Exporter guide, case 2: tcpextlistendrops rising during Java GC",
         error_types=STALL_ERRORS, all_of=(_pod("netreceiver.tcp.listen_drops"),),
         also=(THROTTLED, _pod("netreceiver.tcp.passive_opens")),
         pattern="case 2: listen drops while the server stalls"),
    Rule("net.interface_drops", "interface_dropped_packets", "warning", SOCKET,
         (_pod("netreceiver.pod.network.dropped",
               group_by=("network.interface.name", "network.io.direction")),),
         "Your pod's network interface dropped packets (netdev rx/tx dropped).",
         "Receive drops: the pod's backlog or qdisc is full (softnet, CPU); transmit drops: "
         "the qdisc or the peer end refused them. Check the node's softnet and ENA counters.",
         "ACK Net Exporter guide Nginx playbook: inspector_pod_netdevrxdropped, netdevtxdropped"),
    Rule("tcp.retransmissions", "tcp_packet_loss", "warning", SOCKET,
         (Condition(_pod("netreceiver.tcp.retrans_segs"), Op.RATIO, above=RETRANS_RATIO,
                    of=_pod("netreceiver.tcp.out_segs")),),
         "More than 2 % of your pod's TCP segments were retransmitted: packets were lost on "
         "the path (or held long enough to time out).",
         "Look for drops on the path: netfilter rules, the ENA allowances, interface drops; "
         "TCP timeouts with retransmissions make requests slow (Nginx 504, 499).",
         "ACK Net Exporter guide Nginx playbook: inspector_pod_tcpretranssegs",
         also=(_pod("netreceiver.tcp.timeouts"), _pod("netreceiver.tcp.syn_retrans"),
               _pod("netreceiver.tcp.retrans_fail"), _pod("netreceiver.tcp.active_opens"),
               _pod("netreceiver.pod.tcp.retransmits", group_by=("tcp.state",)))),
    Rule("conntrack.invalid", "conntrack_invalid", "info", SOCKET,
         (_pod("netreceiver.conntrack.invalid"),),
         "Connection tracking found packets of your pod it could not track (invalid): "
         "out-of-window, unexpected state or a clash between two flows.",
         "Usually harmless alone; with resets or 502s it means NAT state went wrong "
         "(an expired entry, a race between two flows of the same tuple).",
         "ACK Net Exporter guide Nginx playbook: inspector_pod_conntrackinvalid",
         also=(_pod("netreceiver.conntrack.drop"),)),
    Rule("tcp.receive_queue", "application_not_reading", "warning", SOCKET | NODE,
         (Condition(_queued("receive"), Op.PEAK, above=QUEUE_BYTES),),
         "More than 64 KiB sat unread in your pod's TCP receive queues: data arrived and the "
         "process did not read it (a stalled or throttled process, a blocked event loop).",
         "Find what stops the reader: CPU throttling, GC pauses, a blocking call on the "
         "event loop. Needs the podnet probe tcpqueues.",
         "ACK Net Exporter guide Nginx slow-response and jitter playbooks: tcpsummarytcprxqueue",
         also=(THROTTLED,)),
    Rule("case4.slow_process", "process_not_keeping_up", "warning", SOCKET | NODE,
         (Condition(_queued("receive"), Op.PEAK, above=QUEUE_BYTES),),
         "Case 4 of the ACK Net Exporter guide: the kernel worked normally (connections "
         "established, data "
         "queued) but your pod's process stopped reading and writing: bytes piled up in the "
         "receive and send queues, established connections rose while time-waits fell.",
         "The process is not being scheduled: look at CPU throttling of the pod's cgroup "
         "(evidence below when it happened) and give it CPU burst or a higher limit.",
         "ACK Net Exporter guide, case 4: tcprxqueue and tcptxqueue up, timewait down, "
         "established up",
         all_of=(Condition(_queued("transmit"), Op.PEAK),
                 Condition(_conns("established"), Op.GROWTH),
                 Condition(_conns("time_wait"), Op.GROWTH, above=None, below=0.0)),
         also=(THROTTLED, _pod("netreceiver.tcp.timeouts")),
         pattern="case 4: ingress health checks fail while its process is throttled"),
)

RESET_RULES: tuple[Rule, ...] = (
    Rule("tcp.aborted", "connection_aborted_locally", "warning", SOCKET,
         (_pod("netreceiver.tcp.abort_on_timeout"), _pod("netreceiver.tcp.abort_on_linger"),
          _pod("netreceiver.tcp.abort_on_close"), _pod("netreceiver.tcp.abort_on_memory"),
          _pod("netreceiver.tcp.abort_on_data")),
         "Your pod's kernel aborted TCP connections with a reset: the counter in the evidence "
         "says why (timeout: retries or keepalive exhausted; close: closed with unread data; "
         "data/linger: SO_LINGER 0; memory: TCP out of memory).",
         "abort_on_close: the application closes sockets before reading the request or the "
         "response; abort_on_timeout: the peer vanished; abort_on_memory: raise tcp_mem.",
         "ACK Net Exporter guide TCP reset playbook: "
         "tcpexttcpabortontimeout/linger/close/memory/data",
         error_types=RESET_ERRORS, also=(_pod("netreceiver.tcp.out_rsts"),)),
    Rule("tcp.reset_sent", "resets_sent", "warning", SOCKET,
         (_pod("netreceiver.tcp.out_rsts"), SENT_RESETS),
         "Your pod sent TCP resets: a segment arrived for which it had no socket (a closed "
         "port, a connection it had already forgotten), or it aborted connections.",
         "state no_socket in the evidence: nobody listened on that port, or a NAT entry "
         "expired so a stray segment was answered; check the Service endpoints and ports.",
         "ACK Net Exporter guide TCP reset playbook: inspector_pod_tcpoutrsts, TCP_SEND_RST_NOSock",
         error_types=RESET_ERRORS, also=(_pod("netreceiver.tcp.estab_resets"),)),
    Rule("tcp.ack_skipped", "paws_or_syn_recv_ack_skipped", "warning", SOCKET,
         (_pod("netreceiver.tcp.ack_skipped_syn_recv"), _pod("netreceiver.tcp.ack_skipped_paws"),
          _pod("netreceiver.tcp.paws_estab")),
         "Your pod's kernel rejected segments by PAWS (timestamps went backwards) or skipped "
         "ACKs in SYN_RECV: typical of several clients behind one NAT reusing ports.",
         "Avoid source NAT to a shared address for many clients, do not enable "
         "tcp_tw_recycle-like tuning, and keep timestamps consistent per source address.",
         "ACK Net Exporter guide TCP reset playbook: tcpackskippedsynrecv, tcpackskippedpaws"),
)

JITTER_RULES: tuple[Rule, ...] = (
    Rule("jitter.softirq", "softirq_delay", "warning", NODE,
         (Condition(Signal("netreceiver.softirq.latency", Scope.NODE,
                           group_by=("softirq.vector", "softirq.phase")),
                    Op.QUANTILE, above=SOFTIRQ_SECONDS),),
         "The node's network softirqs waited or ran for more than 10 ms (p99): packets sat "
         "in the kernel while ksoftirqd was not scheduled or a softirq ran long.",
         "Look for real-time or busy processes on the same CPUs, unbalanced interrupts "
         "(irqbalance, RPS) and NUMA imbalance.",
         "ACK Net Exporter guide latency jitter playbook: netsoftirqshed, netsoftirq"),
    Rule("jitter.tcp_timeouts", "tcp_timeouts", "info", NODE,
         (_pod("netreceiver.tcp.timeouts"),),
         "Your pod's TCP connections hit retransmission timeouts: each one is at least "
         "200 ms of added latency.",
         "See tcp_packet_loss; timeouts without loss point at a stalled peer.",
         "ACK Net Exporter guide latency jitter playbook: tcpexttcptimeouts"),
    Rule("jitter.send_queue", "peer_not_reading", "info", NODE,
         (Condition(_queued("transmit"), Op.PEAK, above=QUEUE_BYTES),),
         "Bytes piled up in your pod's TCP send queues: the peer (or the path) is not taking "
         "them as fast as the pod writes.",
         "Check the peer's receive side and the path for loss; see the retransmission rule.",
         "ACK Net Exporter guide latency jitter playbook: tcpsummarytcptxqueue"),
    Rule("jitter.cpu_throttled", "cpu_throttled", "warning", NODE,
         (THROTTLED,),
         "Your pod's cgroup was CPU-throttled in more than 10 % of its CFS periods: its "
         "processes could not run, so requests and packets waited.",
         "Raise the CPU limit or enable CPU burst, or remove the limit and keep the request.",
         "ACK Net Exporter guide latency jitter playbook and case 4: CPU throttled",
         also=(_pod("netreceiver.pod.cpu.throttled_time"),)),
)

ENA_RULES: tuple[Rule, ...] = (
    Rule("ena.pps", "eni_pps_allowance_exceeded", "warning", BOTH,
         (_ena("pps"),),
         "The instance exceeded its packets-per-second allowance: the ENA queued or dropped "
         "packets (pps_allowance_exceeded). Small packets (DNS, RPC) reach it first.",
         "Batch or coalesce small messages, use a larger or network-optimised instance type, "
         "or spread the traffic over more nodes.",
         "EKS network guide: pps_allowance_exceeded"),
    Rule("ena.bw_in", "eni_inbound_bandwidth_exceeded", "warning", BOTH,
         (_ena("bw_in"),),
         "Inbound traffic exceeded the instance's aggregate bandwidth allowance "
         "(bw_in_allowance_exceeded): the ENA queued or dropped received packets.",
         "Use an instance type with more bandwidth, or spread downloads and replication "
         "over more nodes and over time.",
         "EKS network guide: bw_in_allowance_exceeded"),
    Rule("ena.bw_out", "eni_outbound_bandwidth_exceeded", "warning", BOTH,
         (_ena("bw_out"),),
         "Outbound traffic exceeded the instance's aggregate bandwidth allowance "
         "(bw_out_allowance_exceeded): the ENA queued or dropped sent packets. Single flows "
         "are also capped (5 Gbit/s outside a placement group).",
         "Use an instance type with more bandwidth, spread uploads over more flows and nodes, "
         "or compress.",
         "EKS network guide: bw_out_allowance_exceeded"),
)

NODE_PLAYBOOKS: tuple[Rule, ...] = (*DNS_RULES, *NGINX_RULES, *RESET_RULES, *JITTER_RULES,
                                    *ENA_RULES)
