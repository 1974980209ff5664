"""Where the delay is: the node's stack, the pod's socket queue, or the path.

The ACK Net Exporter guide's latency jitter playbook separates three places a request can
wait. The agent measures each: the path's round trip from the kernel's own RTT estimate
of every established socket (probe tcprtt: tcp_info's smoothed RTT and mean deviation,
net/ipv4/tcp_input.c tcp_rtt_estimator), the node's stack from the NET_RX/NET_TX softirq
and per-pod kernel latency histograms (eBPF probes netsoftirq, kernellatency), the pod's
socket queue from the socket latency histogram (probe socketlatency) and the bytes
unread in its receive queues (probe tcpqueues). A high or jittery RTT is the path's only
when the stack and the receive side are clean: a stalled softirq delays the ACKs that
the RTT is measured by, and a receive queue nobody reads is the application's delay.
Send-queue bytes are not evidence against the path: /proc/net/tcp's tx_queue counts the
bytes in flight (write_seq - snd_una, net/ipv4/tcp_ipv4.c get_tcp4_sock), which a long
path fills by itself.

Thresholds sit above what the receiver's delayed ACKs add to a healthy RTT sample: 40 ms
at least, 200 ms at most (include/net/tcp.h, TCP_DELACK_MIN and TCP_DELACK_MAX), so a
jitter of 50 ms and an RTT of 200 ms are the path's, not an idle peer's ACK timer. A path
whose delay varies that much also delays a lot on average (a delay is never negative: its
mean deviation stays below twice its mean), so jitter needs a smoothed RTT of 100 ms too.
A deviation larger than the RTT itself is a few outliers: RTT samples taken across a loss
recovery on a lossy near path (measured: srtt 9 ms, rttvar 14 ms, floor 0.07 ms under 20 %
frame loss), which the loss rules explain.
"""

from __future__ import annotations

from otel_netreceiver.diagnosis.model import Condition, Op, Rule, Scope, Signal
from otel_netreceiver.diagnosis.playbooks import QUEUE_BYTES, SOCKET, SOFTIRQ_SECONDS

NODE = frozenset({"node"})
RTT_SECONDS = 0.2  # the highest smoothed RTT of a pod's sockets
JITTER_SECONDS = 0.05  # the highest mean deviation of a socket's RTT
JITTER_RTT_SECONDS = 2 * JITTER_SECONDS  # the smoothed RTT a delay varying that much has
KERNEL_SECONDS = 0.01  # p99 time through the pod's kernel stack
SOCKET_WAIT_SECONDS = 0.1  # p99 time data waits at the pod's sockets


def _stat(metric: str, statistic: str) -> Signal:
    return Signal(metric, Scope.POD, (("tcp.rtt.statistic", statistic),))


RTT = tuple(Condition(_stat("netreceiver.tcp.rtt", s), Op.PEAK, above=None)
            for s in ("max", "mean", "min"))
VARIATION = tuple(Condition(_stat("netreceiver.tcp.rtt.variation", s), Op.PEAK, above=None)
                  for s in ("max", "mean"))
# the numbers shown beside a finding (the max statistics decide, so they are shown as such)
NUMBERS = (RTT[1], RTT[2], VARIATION[1],
           Condition(Signal("netreceiver.tcp.rtt.sockets", Scope.POD), Op.PEAK, above=None))
SLOW = Condition(RTT[0].signal, Op.PEAK, above=RTT_SECONDS)
JITTERY = Condition(VARIATION[0].signal, Op.PEAK, above=JITTER_SECONDS)
DELAYED = Condition(RTT[0].signal, Op.PEAK, above=JITTER_RTT_SECONDS)
SOFTIRQ_SLOW = Condition(Signal("netreceiver.softirq.latency", Scope.NODE,
                                group_by=("softirq.vector", "softirq.phase")),
                         Op.QUANTILE, above=SOFTIRQ_SECONDS)
KERNEL_SLOW = Condition(Signal("netreceiver.pod.kernel.latency", Scope.POD,
                               group_by=("network.io.direction",)),
                        Op.QUANTILE, above=KERNEL_SECONDS)
SOCKET_SLOW = Condition(Signal("netreceiver.pod.socket.latency", Scope.POD,
                               (("network.io.direction", "receive"),)),
                        Op.QUANTILE, above=SOCKET_WAIT_SECONDS)
UNREAD = Condition(Signal("netreceiver.tcp.queued", Scope.POD,
                          (("network.io.direction", "receive"),)), Op.PEAK, above=QUEUE_BYTES)
NOT_THE_PATH = (SOFTIRQ_SLOW, KERNEL_SLOW, SOCKET_SLOW, UNREAD)
PATH_EVIDENCE = (*NUMBERS, Signal("netreceiver.tcp.retrans_segs", Scope.POD),
                 Signal("netreceiver.tcp.dsack_recv", Scope.POD),
                 Signal("netreceiver.tcp.sack_reorder", Scope.POD))
PLAYBOOK = "ACK Net Exporter guide latency jitter playbook"
ESTIMATOR = "tcp_info tcpi_rtt and tcpi_rttvar (net/ipv4/tcp.c tcp_get_info), RFC 6298"


def _stack_rule(rule_id: str, slow: Condition, where: str) -> Rule:
    return Rule(
        rule_id, "latency_in_node_stack", "warning", SOCKET | NODE, (SLOW, JITTERY),
        "Your pod's TCP round trips were long or jittery while packets waited in this "
        f"node's kernel ({where}, p99 in the evidence): ACKs and data sat in the stack, so "
        "the delay is on this node, not on the path.",
        "Look for busy or real-time processes on the CPUs that take network interrupts, "
        "unbalanced interrupts (irqbalance, RPS/RFS), NUMA imbalance and CPU throttling of "
        "the agent's neighbours; then re-check the RTT.",
        f"{PLAYBOOK}: netsoftirqshed, netsoftirq and kernel latency; {ESTIMATOR}",
        all_of=(slow,), also=NUMBERS)


LATENCY_RULES: tuple[Rule, ...] = (
    _stack_rule("latency.softirq", SOFTIRQ_SLOW, "network softirqs waited or ran long"),
    _stack_rule("latency.kernel", KERNEL_SLOW, "the pod's packets crossed the stack slowly"),
    Rule("latency.socket_queue", "latency_in_socket_queue", "warning", SOCKET | NODE,
         (SOCKET_SLOW,),
         "Data waited at your pod's sockets for more than 100 ms (p99) before the process "
         "read it: the delay is in the pod's socket queue, its own reading, not the network "
         "(the RTT in the evidence shows the path).",
         "Find what keeps the reader from the socket: CPU throttling, GC pauses, a blocking "
         "call on the event loop, too few worker threads.",
         f"{PLAYBOOK}: socket latency, tcpsummarytcprxqueue",
         also=(*NUMBERS, UNREAD)),
    Rule("latency.path_jitter", "path_jitter", "warning", SOCKET | NODE, (JITTERY,),
         "The round-trip time of your pod's TCP connections varied by more than 50 ms (the "
         "kernel's mean deviation, max over the sockets) around round trips above 100 ms, "
         "while this node's stack and the "
         "pod's receive queues were clean: the delay and its jitter are on the path between "
         "the pod and its peers. Requests over it are slow and uneven; TCP may retransmit "
         "what is only late.",
         "Find the hop that holds packets: a congested or shaped link, an overloaded "
         "middlebox, NAT gateway or proxy, an overlay or VPN, a peer far away. The reordering "
         "and retransmission evidence tells a variable delay from loss.",
         f"{PLAYBOOK}; {ESTIMATOR}",
         all_of=(DELAYED,), none_of=NOT_THE_PATH, also=PATH_EVIDENCE,
         supersedes=frozenset({"path_latency"})),
    Rule("latency.path", "path_latency", "info", SOCKET | NODE, (SLOW,),
         "The smoothed round-trip time of some of your pod's TCP connections exceeded 200 ms "
         "while this node's stack and the pod's receive queues were clean: the delay is on "
         "the path (a distant peer, or a slow hop).",
         "If the peers should be near (same region), find the hop that adds the delay; if "
         "they are far, expect each round trip to cost this much (connection reuse and "
         "fewer round trips per request help).",
         f"{PLAYBOOK}; {ESTIMATOR}",
         none_of=NOT_THE_PATH, also=(VARIATION[0], *PATH_EVIDENCE)),
)
