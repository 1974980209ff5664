"""The one catalogue of every metric the agent emits.

Collectors look their definitions up here by name; ``docs/metrics.md`` is
generated from this table and the tests check ``deploy/`` rules against it.
Add a row here before a collector emits a new metric; a BPF probe's rows are in
its own module (bpf/probes/<name>/) and are added here from the registered probes.
"""

from __future__ import annotations

from collections.abc import Iterable

from otel_netreceiver.bpf.probes import REGISTERED
from otel_netreceiver.catalogue_kernel import NETNS_FIELDS, metric_name
from otel_netreceiver.model import Kind, MetricDef, Scope

_C, _G, _H = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM

IFACE = "network.interface.name"
DIRECTION = "network.io.direction"
ENI = "aws.eni.id"
RTT_STAT = "tcp.rtt.statistic"

# name, kind, unit, attributes, source, description
_ROWS: tuple[tuple[str, Kind, str, tuple[str, ...], str, str], ...] = (
    # --- ENA (EKS network guide; driver amzn-drivers ena_ethtool.c) -------------------
    ("aws.ena.allowance.exceeded", _C, "{packet}", ("aws.ena.allowance", IFACE, ENI), "ena",
     "Packets shaped or dropped because an EC2 allowance was exceeded, cumulative since the "
     "driver's last reset. aws.ena.allowance: bw_in, bw_out, pps, conntrack (per instance) or "
     "linklocal (per ENI: DNS, IMDS, Time Sync at 1024 packets/s)."),
    ("aws.ena.conntrack.allowance.available", _G, "{connection}", (IFACE, ENI), "ena",
     "Tracked connections the instance can still establish before reaching its conntrack "
     "allowance (Nitro, driver >= 2.8.1)."),
    ("aws.ena.srd.mode", _G, "1", (IFACE, ENI), "ena",
     "ENA Express (SRD) mode bitmask as reported by the driver (0 = off)."),
    ("aws.ena.srd.packets", _C, "{packet}", (DIRECTION, IFACE, ENI), "ena",
     "Packets sent or received over ENA Express (SRD)."),
    ("aws.ena.srd.eligible_packets", _C, "{packet}", (IFACE, ENI), "ena",
     "Transmitted packets that were eligible for ENA Express (SRD)."),
    ("aws.ena.srd.resource.utilization", _G, "%", (IFACE, ENI), "ena",
     "Percentage of the ENA Express resources in use."),
    ("node_net_ethtool", _G, "", ("device", "type"), "ena",
     "Compatibility gauge in prometheus-ethtool-exporter naming (the EKS network guide's "
     "rules query it); "
     "disable with collectors.ena.compat_node_net_ethtool: false."),
    # --- generic ethtool driver statistics (opt-in) ------------------------------
    ("netreceiver.ethtool.stat", _G, "", (IFACE, "ethtool.driver", "ethtool.stat"), "ethtool",
     "A driver statistic from `ethtool -S`, as a gauge: drivers do not say which are counters."),
    # --- host network interfaces (/proc/net/dev of the host namespace) -----------
    ("system.network.io", _C, "By", (IFACE, DIRECTION), "netdev",
     "Bytes received and transmitted by each interface of the host network namespace."),
    ("system.network.packet.count", _C, "{packet}", (IFACE, DIRECTION), "netdev",
     "Packets received and transmitted by each interface."),
    ("system.network.errors", _C, "{error}", (IFACE, DIRECTION), "netdev",
     "Receive and transmit errors of each interface."),
    ("system.network.packet.dropped", _C, "{packet}", (IFACE, DIRECTION), "netdev",
     "Packets dropped on receive or transmit by each interface."),
    # --- emitted by the application SDK (sdk/), not the agent: listed so deploy/ rules ----
    # --- and dashboards over them are checked like the agent's (tests/unit/test_sdk_catalogue)
    ("dns.lookup.duration", _H, "s", ("error.type",), "sdk",
     "Duration of the application's DNS lookups (getaddrinfo of a name; semantic "
     "conventions); error.type only when the lookup failed: host_not_found, try_again, "
     "timeout (no answer within the resolver timeout: packets lost), no_data, "
     "server_failure, ..."),
    ("netreceiver.sdk.socket.errors", _C, "{error}", ("error.type", "network.transport", "phase"),
     "sdk", "Failed socket calls of the application by errno (ECONNRESET, EPIPE, ETIMEDOUT, "
     "ECONNREFUSED, ...), transport and phase (connect, read, write)."),
    # --- the agent's own telemetry -----------------------------------------------
    ("netreceiver.collector.duration", _G, "s", ("collector",), "self",
     "Wall time of the collector's last cycle."),
    ("netreceiver.collector.cycles", _C, "{cycle}", ("collector",), "self",
     "Cycles run by each collector."),
    ("netreceiver.collector.errors", _C, "{error}", ("collector",), "self",
     "Cycles of each collector that failed or reported an error (one vanished object is not one)."),
    ("netreceiver.collector.cpu.time", _C, "s", ("collector",), "self",
     "CPU time (thread time) spent by each collector."),
    ("netreceiver.collector.restarts", _C, "{restart}", ("collector",), "self",
     "Cycles of each collector that died with an exception it could not catch; the collector "
     "is restarted after its backoff."),
    ("netreceiver.collector.available", _G, "1", ("collector",), "self",
     "1 when the collector (or imds, kubernetes) works on this host, 0 when not; why is in "
     "`otel-netreceiver probes`. Checked when collectors start and on each reload."),
    ("netreceiver.export.crashes", _C, "{cycle}", (), "self",
     "Export cycles that raised (an exporter broke its contract); the next interval retries."),
    ("netreceiver.series.exported", _G, "{series}", ("instrument",), "self",
     "Series of each instrument in the last export (watch the agent's own volume: a series "
     "that never stops loads the node)."),
    ("netreceiver.series.dropped", _C, "{series}", ("instrument",), "self",
     "Series refused because the instrument reached its cardinality cap."),
    ("netreceiver.export.failures", _C, "{export}", ("exporter",), "self",
     "Exports that failed, per exporter."),
    ("netreceiver.export.points", _C, "{point}", ("exporter",), "self",
     "Data points successfully exported, per exporter."),
    ("netreceiver.export.bytes", _C, "By", ("exporter",), "self",
     "Encoded (uncompressed) bytes of successful exports, per exporter."),
    ("netreceiver.process.cpu.time", _C, "s", (), "self",
     "CPU time of the agent process (user + system)."),
    ("netreceiver.process.memory.rss", _G, "By", (), "self",
     "Resident memory of the agent process."),
    ("netreceiver.config.reloads", _C, "{reload}", ("result",), "self",
     "Configuration reloads, by result: applied or rejected (the last good one kept running)."),
    ("netreceiver.k8s.pods", _G, "{pod}", (), "self",
     "Pods of this node known from the Kubernetes watch."),
    ("netreceiver.k8s.lists", _C, "{request}", (), "self",
     "Full LISTs of this node's pods (one at start, one per 410 Gone: a rising rate is a storm)."),
    ("netreceiver.k8s.errors", _C, "{error}", (), "self",
     "Failed list or watch requests to the Kubernetes API (retried with backoff)."),
    ("netreceiver.nodeapi.requests", _C, "{request}", ("outcome",), "self",
     "Node API requests by outcome: ok, refused (unknown caller), rate_limited, bad_request, "
     "too_large, not_allowed, not_found, busy (more than max_connections at once)."),
    ("netreceiver.nodeapi.dns_events.dropped", _C, "{event}", ("reason",), "self",
     "DNS failure events (DNS_TIMEOUT, DNS_LATE_ANSWER) the node API's per-pod ring of recent "
     "events let go, by reason: overwritten (a newer event of the same pod), too_many_pods "
     "(room for another pod), pod_gone (its network namespace is gone). Only the node API's "
     "copy: the log records were exported."),
    ("netreceiver.diagnosis.findings", _G, "{finding}",
     ("diagnosis.rule", "diagnosis.verdict", "k8s.pod.uid", "k8s.pod.name",
      "k8s.namespace.name"), "diagnosis",
     "1 for each finding the playbooks hold now over the agent's recent history "
     "(docs/playbooks.md); a finding that stops holding is gone from the next cycle."),
    ("netreceiver.history.series", _G, "{series}", (), "self",
     "Series kept in the correlation history (the metrics the diagnosis rules read)."),
    ("netreceiver.history.samples", _G, "{sample}", (), "self",
     "Change points held by the correlation history (a series that did not move costs one)."),
    ("netreceiver.netns.count", _G, "{namespace}", ("netns.kind",), "podnet",
     "Network namespaces seen in the last cycle, by kind (pod, host, other)."),
    ("netreceiver.series.suppressed", _G, "{series}", ("instrument",), "self",
     "Per-pod counter series held back because they never moved from zero (sent, with a zero "
     "baseline, the cycle they first move)."),
    # --- node-wide kernel state (the ACK Net Exporter guide's node-level metrics) ---
    ("netreceiver.softnet.processed", _C, "{packet}", (), "nodenet",
     "Packets processed by the NET_RX softirq, all CPUs (/proc/net/softnet_stat)."),
    ("netreceiver.softnet.dropped", _C, "{packet}", (), "nodenet",
     "Packets dropped because a CPU's input backlog was full (netdev_max_backlog)."),
    ("netreceiver.softnet.time_squeeze", _C, "{event}", (), "nodenet",
     "NET_RX runs that ended with work left (budget or time exhausted)."),
    ("netreceiver.slab.tcp.objects", _G, "{object}", ("slab.state",), "nodenet",
     "TCP socket objects in the kernel slab (/proc/slabinfo 'TCP'), active or total."),
    ("netreceiver.node.tcp.orphans", _G, "{socket}", (), "nodenet",
     "TCP sockets no longer attached to a process (/proc/net/sockstat, node-wide)."),
    ("netreceiver.node.tcp.allocated", _G, "{socket}", (), "nodenet",
     "TCP sockets allocated, all namespaces (/proc/net/sockstat)."),
    ("netreceiver.node.tcp.memory", _G, "By", (), "nodenet",
     "Memory used by TCP buffers, all namespaces (sockstat 'mem' pages)."),
    ("netreceiver.node.udp.memory", _G, "By", (), "nodenet",
     "Memory used by UDP buffers, all namespaces (sockstat 'mem' pages)."),
    ("netreceiver.conntrack.limit", _G, "{entry}", (), "nodenet",
     "Maximum conntrack entries (net.netfilter.nf_conntrack_max)."),
    # --- eBPF probes: each probe's own rows are in its module (bpf/probes/) ---------
    ("netreceiver.bpf.lost", _C, "{update}", ("probe",), "ebpf",
     "Kernel map updates that failed because a map was full (counted, never silent)."),
    # --- event records (events/) -------------------------------------------------
    ("netreceiver.events", _C, "{event}", ("event.name",), "events",
     "Event records that passed the kernel budget and the agent's rate limit and went to the "
     "exporters (OTLP logs), by type (TCP_SEND_RST, PACKETLOSS, NET_SOFTIRQ_SLOW, ...; "
     "peer.top: the peers probe's top peers per pod and interval, handed to the exporter)."),
    ("netreceiver.events.dropped", _C, "{event}", ("event.name", "reason"), "events",
     "Event records lost, by reason: rate_limit_kernel, perf_buffer_full (the perf buffer's "
     "lost samples), rate_limit_user, queue_full, "
     "export_failed, shutdown, decode_failed, interval_cap (peer.top records past "
     "collectors.ebpf.peers_top_records in one interval); symbolisation_failed and stack_lost "
     "count records sent without a named location or stack."),
)

# Attributes of every per-pod series. netns.kind is pod, host (the node's own namespace,
# shared by hostNetwork pods) or other (a namespace no pod owns); process.command names
# the namespace's first process when no pod does.
POD = ("k8s.pod.name", "k8s.namespace.name", "k8s.pod.uid", "netns.inode", "netns.kind",
       "process.command")
_IO = (IFACE, DIRECTION)

_POD_ROWS: tuple[tuple[str, Kind, str, tuple[str, ...], str, str], ...] = (
    ("k8s.pod.network.io", _C, "By", _IO, "podnet",
     "Bytes received and sent by each interface of the pod's network namespace (net/dev)."),
    ("k8s.pod.network.errors", _C, "{error}", _IO, "podnet",
     "Receive and transmit errors of each interface of the pod (net/dev)."),
    ("netreceiver.pod.network.packets", _C, "{packet}", _IO, "podnet",
     "Packets received and sent by each interface of the pod (net/dev)."),
    ("netreceiver.pod.network.dropped", _C, "{packet}", _IO, "podnet",
     "Packets dropped on receive or transmit by each interface of the pod (net/dev)."),
    ("netreceiver.sockets.in_use", _G, "{socket}", ("network.transport",), "podnet",
     "Sockets in use in the namespace, by protocol (net/sockstat 'inuse')."),
    ("netreceiver.tcp.connections", _G, "{connection}", ("tcp.state",), "podnet",
     "TCP connections by state: established (snmp CurrEstab: ESTABLISHED and CLOSE_WAIT) and "
     "time_wait (sockstat tw) from probe tcpsummary; listen from probe tcpqueues."),
    ("netreceiver.tcp.queued", _G, "By", (DIRECTION,), "podnet",
     "Bytes waiting in the send and receive queues of the namespace's TCP sockets in every "
     "state that holds data (established, close-wait, FIN-WAIT-1 with unsent bytes; not "
     "listeners) (probe tcpqueues: walks net/tcp and net/tcp6)."),
    ("netreceiver.tcp.rtt", _G, "s", (RTT_STAT,), "podnet",
     "Smoothed round-trip time of the namespace's established TCP sockets (tcp_info tcpi_rtt "
     "through sock_diag; probe tcprtt): mean and max over the sockets, min: the lowest "
     "tcpi_min_rtt (the nearest peer's floor). No addresses: one series per statistic."),
    ("netreceiver.tcp.rtt.variation", _G, "s", (RTT_STAT,), "podnet",
     "Mean deviation of the round-trip time of the namespace's established TCP sockets "
     "(tcp_info tcpi_rttvar: the kernel's smoothed mdev, without the RTO floor; probe "
     "tcprtt): mean and max over the sockets. Jitter."),
    ("netreceiver.tcp.rtt.sockets", _G, "{socket}", (), "podnet",
     "Established TCP sockets with an RTT sample that netreceiver.tcp.rtt summarises "
     "(probe tcprtt)."),
    ("netreceiver.conntrack.entries", _G, "{entry}", (), "podnet",
     "Conntrack entries of the namespace (net/stat/nf_conntrack 'entries')."),
    ("netreceiver.pod.open_files", _G, "{file}", (), "podnet",
     "Open file descriptors of the pod's processes (probe fd)."),
    ("netreceiver.pod.open_sockets", _G, "{socket}", (), "podnet",
     "Open sockets of the pod's processes (probe fd)."),
    ("netreceiver.pod.io.syscalls", _C, "{syscall}", (DIRECTION,), "podnet",
     "read (receive) and write (transmit) system calls of the pod's processes, accumulated per "
     "process so exits do not reset it (probe io; /proc/<pid>/io syscr, syscw)."),
    ("netreceiver.pod.io.bytes", _C, "By", (DIRECTION,), "podnet",
     "Bytes passed to read and write system calls by the pod's processes (probe io; rchar, "
     "wchar)."),
    ("netreceiver.pod.cpu.periods", _C, "{period}", (), "podnet",
     "CFS enforcement periods of the pod's cgroup (cpu.stat nr_periods)."),
    ("netreceiver.pod.cpu.throttled_periods", _C, "{period}", (), "podnet",
     "Periods in which the pod was throttled by its CPU limit (cpu.stat nr_throttled)."),
    ("netreceiver.pod.cpu.throttled_time", _C, "s", (), "podnet",
     "Time the pod was throttled by its CPU limit (cpu.stat throttled_time/throttled_usec)."),
)
CONNTRACK_STATS = ("found", "invalid", "ignore", "insert", "insert_failed", "drop",
                   "early_drop", "icmp_error", "search_restart", "clash_resolve")

CATALOGUE: dict[str, MetricDef] = {
    name: MetricDef(name, kind, unit, desc, attributes, Scope.NODE, source)
    for name, kind, unit, attributes, source, desc in _ROWS
}
CATALOGUE.update({
    row.name: MetricDef(row.name, row.kind, row.unit, row.description, row.attributes,
                        Scope.NODE, "ebpf")
    for probe in REGISTERED for row in probe.metrics if not row.pod
})
CATALOGUE.update({
    name: MetricDef(name, kind, unit, desc, POD + attributes, Scope.POD, source)
    for name, kind, unit, attributes, source, desc in _POD_ROWS
})
CATALOGUE.update({
    row.name: MetricDef(row.name, row.kind, row.unit, row.description, POD + row.attributes,
                        Scope.POD, "ebpf")
    for probe in REGISTERED for row in probe.metrics if row.pod
})
CATALOGUE.update({
    metric_name(section, field): MetricDef(
        metric_name(section, field), kind, unit,
        f"{what.capitalize()} (kernel: {section} {field}).",
        POD, Scope.POD, "podnet")
    for section, field, kind, unit, what in NETNS_FIELDS
})
CATALOGUE.update({
    f"netreceiver.conntrack.{stat}": MetricDef(
        f"netreceiver.conntrack.{stat}", Kind.COUNTER, "{event}",
        f"Conntrack '{stat}' events of the namespace, all CPUs (net/stat/nf_conntrack).",
        POD, Scope.POD, "podnet")
    for stat in CONNTRACK_STATS
})


def metric(name: str) -> MetricDef:
    """The definition of ``name``; a KeyError names the missing row."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in otel_netreceiver/catalogue.py") from None


def by_source(source: str) -> Iterable[MetricDef]:
    return (m for m in CATALOGUE.values() if m.source == source)
