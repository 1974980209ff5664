"""The dns probe's metrics: catalogue rows (catalogue.py adds them to the per-pod table).

No query names, addresses or transaction ids as attributes: a few values each.
"""

from __future__ import annotations

from otel_netreceiver.bpf.probe import MetricRow
from otel_netreceiver.model import Kind

_C, _H = Kind.COUNTER, Kind.HISTOGRAM
ROLE, CLASS, TRANSPORT = "dns.role", "dns.resolver.class", "network.transport"
_WHERE = (" Seen at the pod's sockets (cgroup_skb on the cgroup v2 root; probe dns, opt-in); "
          "dns.role client: the pod asked, server: the pod answered; dns.resolver.class: "
          "cluster_dns, node_local, amazon or other, from collectors.ebpf.dns addresses.")

_ROWS: tuple[tuple[str, Kind, str, tuple[str, ...], str, str], ...] = (
    ("netreceiver.pod.dns.queries", _C, "{query}", (ROLE, CLASS, "dns.question.type", TRANSPORT),
     "ebpf", "DNS queries sent (client) or received (server), by the first question's type "
             "(A, AAAA, other); a re-sent query counts again." + _WHERE),
    ("netreceiver.pod.dns.responses", _C, "{response}",
     (ROLE, CLASS, "dns.response.code", TRANSPORT), "ebpf",
     "DNS responses received (client, including those dropped because their socket was gone) "
     "or sent (server), by response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, other)."
     + _WHERE),
    ("netreceiver.pod.dns.truncated", _C, "{response}", (ROLE, CLASS, TRANSPORT), "ebpf",
     "DNS responses with the TC bit: the answer did not fit and the client should retry over "
     "TCP." + _WHERE),
    ("netreceiver.pod.dns.latency", _H, "s", (CLASS,), "ebpf",
     "Time from a client query's last attempt to its matching response (same namespace, "
     "client port, transaction id and transport), log2 buckets from the kernel; late answers "
     "included, so the tail past the pod's resolver timeout shows how late." + _WHERE),
    ("netreceiver.pod.dns.timeouts", _C, "{query}", (CLASS,), "ebpf",
     "Client query attempts with no response within the pod's resolver timeout (options "
     "timeout: of the resolv.conf its processes see, default 5 s), counted once each, at the "
     "first collection after expiry or at the first packet after it (a re-send of the same "
     "query, a late answer)." + _WHERE),
    ("netreceiver.pod.dns.late_answers", _C, "{response}", (CLASS, "dns.late.reason"), "ebpf",
     "Responses that came after their query timed out (dns.late.reason after_timeout) or to a "
     "socket that no longer existed (no_socket: the kernel dropped them with NO_SOCKET); "
     "a query re-sent with the same id can be answered once per attempt, each answer counted."
     + _WHERE),
    ("netreceiver.pod.dns.unmatched", _C, "{response}", (CLASS,), "ebpf",
     "Client responses that matched no outstanding query (more answers than attempts, or one "
     "older than the late-answer window)." + _WHERE),
    ("netreceiver.pod.dns.retransmits", _C, "{query}", (CLASS,), "ebpf",
     "Client queries re-sent with the same client port and transaction id while the first "
     "was outstanding or after it timed out." + _WHERE),
    ("netreceiver.pod.dns.unparsed", _C, "{packet}", ("dns.unparsed.reason",), "ebpf",
     "UDP packets on a DNS port that are not a DNS message the probe can use, by reason "
     "(short_header, not_dns, label_past_end, bad_label, name_too_long, bad_pointer: "
     "dns/message.py's checks). TCP segments that do not start a message are not counted; "
     "the probe parses the first 4 length-prefixed messages of a TCP segment and counts a "
     "segment with more once (tcp_messages_past_limit)." + _WHERE),
    ("netreceiver.pod.dns.ndots_expansions", _C, "{lookup}", (CLASS,), "ebpf",
     "Lookups the pod's resolver fanned out over its search path (resolv.conf search and "
     "ndots): a run of NXDOMAIN answers for names sharing their first label, followed within "
     "5 s by an answer for the same first label under another name (a longer or shorter "
     "suffix), counted once per run whatever its length and however many query types (A and "
     "AAAA) it carried. Each NXDOMAIN of the run is still a query to the resolver (and, for "
     "the Amazon resolver, a link-local packet against the ENI's allowance). Runs are keyed "
     "by pod and first label, so concurrent lookups of other names do not break them; a "
     "lookup whose first suffix answers is not counted." + _WHERE),
    ("netreceiver.pod.dns.tcp_fallbacks", _C, "{lookup}", (CLASS, "dns.fallback.result"),
     "ebpf",
     "Truncated UDP answers (TC bit) and what the client's retry over TCP for the same name "
     "gave: dns.fallback.result ok (a TCP answer within the pod's resolver timeout) or "
     "failed (none in time: the TCP connection refused, reset or unanswered, or no TCP retry "
     "at all), counted once, at the answer or at the first collection after the timeout."
     + _WHERE),
    ("netreceiver.pod.linklocal.packets", _C, "{packet}",
     ("linklocal.service", "linklocal.answered_by", "network.interface.name"), "ebpf",
     "Packets the pod's sockets sent to a link-local service. linklocal.answered_by eni: "
     "amazon_dns (also the VPC+2 address), imds, time_sync, which count against the ENI's "
     "1024 packets/s allowance, with network.interface.name the host interface they leave "
     "by; node: node_local_dns (NodeLocal DNSCache), pod_identity (EKS Pod Identity agent), "
     "answered on the node, never counted against it (no interface). hostNetwork pods: by "
     "the sending socket's cgroup (docs/metrics.md, Link-local attribution). Addresses: "
     "collectors.ebpf.dns; probe dns."),
    ("netreceiver.pod.linklocal.bytes", _C, "By",
     ("linklocal.service", "linklocal.answered_by", "network.interface.name"), "ebpf",
     "Bytes (IP packets) of netreceiver.pod.linklocal.packets."),
)

_NODE_ROWS = (
    MetricRow("netreceiver.linklocal.packets", _C, "{packet}",
              ("network.interface.name", "linklocal.service"),
              "Packets every socket of the node (pods, hostNetwork pods, the node itself) sent "
              "to a link-local service the ENI answers (amazon_dns, imds, time_sync), by the "
              "host interface they leave by: what the ENI's 1024 packets/s allowance "
              "(aws.ena.allowance.exceeded, linklocal) counts. network.interface.name unknown: "
              "a pod's packets before its route was resolved and no node route existed. "
              "Probe dns.", pod=False),
    MetricRow("netreceiver.linklocal.peak_packets_per_second", Kind.GAUGE, "{packet}/s",
              ("network.interface.name",),
              "The highest packet count to ENI-answered link-local services within one "
              "second (whole seconds of the kernel's monotonic clock) since the previous "
              "collection, and at least over the last collectors.ebpf.dns.peak_window "
              "seconds, per host interface: a burst over 1024 that a per-interval average "
              "hides. 0 when none were sent. Probe dns.", pod=False),
)

METRICS: tuple[MetricRow, ...] = tuple(
    MetricRow(name, kind, unit, attributes, description, pod=True)
    for name, kind, unit, attributes, _source, description in _ROWS) + _NODE_ROWS

# docs/metrics.md's section on who a link-local packet is attributed to (docsgen appends it)
ATTRIBUTION = """## Link-local attribution

Which sender and which interface the dns probe's link-local metrics
(`netreceiver.pod.linklocal.*`, `netreceiver.linklocal.*`) name. The programs run at the
sending socket (cgroup_skb egress on the cgroup v2 root), so the sender is a socket's owner.

Attributed to a pod:
- A pod with its own network namespace: every packet any of its sockets sends, by the
  namespace cookie. Its interface is the node's routing decision for a packet from the pod's
  address arriving on its host-side veth (rtnetlink RTM_GETROUTE with source, input interface
  and the service address, `netns/egress.py`), so VPC CNI policy rules for secondary-ENI pods
  are followed per service address. Asked when the agent first sees the namespace and every
  60 s after; until then the node's own route to the service address is used.
- A hostNetwork pod (the node's namespace): packets from sockets whose cgroup v2
  (`bpf_skb_cgroup_id`: the cgroup of the task that created the socket) is under a kubepods
  cgroup with the pod's UID in its path, found by walking the v2 tree under
  `collectors.ebpf.dns.cgroup_root` (`<root>/unified`, else `<root>`). Its interface is the
  device the node's own routing chose (the packet's device at egress). Such series carry
  the pod's `k8s.pod.uid` and the node namespace's `netns.inode`.

Fall to the node (`netns.kind` host, no pod):
- the node's own processes (kubelet, the container runtime, chronyd, the agent);
- a hostNetwork pod's socket created before its task joined the pod's cgroup, or received
  from another process: a socket keeps its creator's cgroup;
- hostNetwork pods on nodes where the pods' cgroups are not in a cgroup v2 hierarchy (cgroup
  v1 only, or the cgroupfs driver on v1 controllers of a hybrid host): the id is then the v2
  root's;
- packets the kernel sends from the node's namespace itself (ICMP errors, resets of its
  control sockets, which sit in the root cgroup).

Not seen: packets that come from no local socket (forwarded through the node from
elsewhere). Interfaces may be wrong for packets whose route depends on a firewall mark
(an iptables-set `fwmark` rule): a route lookup carries no mark. A pod with a branch ENI
(security groups for pods) is reported under the VLAN interface its route names, not the
trunk ENI whose ENA counters carry the allowance. `network.interface.name`
is `unknown` for a pod's packets sent before its route was resolved when the node itself
had no route to the address.

NodeLocal DNSCache (`node_local_dns`) and the EKS Pod Identity agent (`pod_identity`) are
answered on the node: counted per pod with `linklocal.answered_by` node and no interface,
never in `netreceiver.linklocal.*`. The peak is per whole second of the kernel's monotonic
clock (not a sliding window): a burst that straddles a second boundary is split between two
seconds.
"""
