"""Every configuration key, its type, default and meaning: the one place defaults live.

The loader walks these dataclasses to validate a YAML file, and
``docs/configuration.md`` is generated from them, so a key documented there
is a key the agent accepts. ``doc`` metadata says what a key is for; ``env``
names the standard variable that fills it when the file leaves it unset.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from otel_netreceiver.bpf.probes import (
    DEFAULT_EVENT_TYPES,
    DEFAULT_PROBES,
    EVENT_NAMES,
    PROBES,
    REGISTERED,
)
from otel_netreceiver.bpf.probes import EVENT_TYPES as EVENT_TYPE_UNITS


def key(default: Any, doc: str, *, env: str = "", choices: tuple[str, ...] = (),
        minimum: float | None = None, duration: bool = False,
        check: Callable[[Any], None] | None = None) -> Any:
    """A dataclass field carrying its documentation and validation metadata
    (``check`` raises ValueError for a value of the right type that is still wrong)."""
    meta = {"doc": doc, "env": env, "choices": choices, "minimum": minimum, "duration": duration,
            "check": check}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class OtlpConfig:
    endpoint: str = key("", "Base URL of the OTLP receiver (the ADOT collector). Setting it "
                        "enables OTLP export.", env="OTEL_EXPORTER_OTLP_ENDPOINT")
    protocol: str = key("http/protobuf", "OTLP transport.", env="OTEL_EXPORTER_OTLP_PROTOCOL",
                        choices=("grpc", "http/protobuf"))
    metrics_path: str = key("/v1/metrics", "Path appended to the endpoint for OTLP/HTTP metrics.")
    logs_path: str = key("/v1/logs", "Path appended to the endpoint for OTLP/HTTP event records "
                         "(logs).")
    headers: dict[str, str] = key({}, "Extra request headers (gRPC metadata).",
                                  env="OTEL_EXPORTER_OTLP_HEADERS")
    timeout: float = key(10.0, "Deadline of one export, retries included.", duration=True,
                         minimum=0.1, env="OTEL_EXPORTER_OTLP_TIMEOUT")
    compression: str = key("gzip", "Request compression.", choices=("gzip", "none"),
                           env="OTEL_EXPORTER_OTLP_COMPRESSION")
    certificate: str = key("", "PEM file of the CA(s) that verify the receiver's certificate "
                           "(TLS); empty: the system's trust store.",
                           env="OTEL_EXPORTER_OTLP_CERTIFICATE")
    client_key: str = key("", "PEM file of the private key the agent presents (mTLS); needs "
                          "client_certificate.", env="OTEL_EXPORTER_OTLP_CLIENT_KEY")
    client_certificate: str = key("", "PEM file of the certificate chain the agent presents "
                                  "(mTLS); needs client_key.",
                                  env="OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
    insecure: bool | None = key(None, "gRPC endpoint without a scheme: true means plaintext; "
                                "null or false means TLS (http:// and https:// decide by "
                                "themselves).", env="OTEL_EXPORTER_OTLP_INSECURE")


@dataclass(frozen=True)
class PrometheusConfig:
    enabled: bool = key(False, "Serve the current series in Prometheus text format on /metrics.")
    host: str = key("127.0.0.1", "Address to listen on (the DaemonSet sets the node address).")
    port: int = key(9102, "Port of /metrics, /healthz and /readyz.", minimum=0)
    max_connections: int = key(8, "Requests served at once (4 at most per client address); "
                               "the rest get 503 at once.", minimum=1)


@dataclass(frozen=True)
class ConsoleConfig:
    enabled: bool | None = key(None, "Print a periodic summary on the terminal; null means "
                               "on when no OTLP endpoint is configured.")
    show_zero: bool = key(False, "With totals: also list series whose value is zero.")
    totals: bool = key(False, "Also print every series' cumulative value; without it each "
                       "summary shows rates since the previous one, grouped by pod, only the "
                       "series that moved (Enter on the agent's terminal prints the values "
                       "once).")


@dataclass(frozen=True)
class ExportersConfig:
    interval: float | None = key(None, "Export interval; null means the collection interval.",
                                 duration=True, minimum=1.0, env="OTEL_METRIC_EXPORT_INTERVAL")
    export_timeout: float | None = key(None, "Deadline of one metrics export, retries included "
                                       "(each request is still bounded by otlp.timeout); null "
                                       "means otlp.timeout.", duration=True, minimum=0.1,
                                       env="OTEL_METRIC_EXPORT_TIMEOUT")
    otlp: OtlpConfig = field(default_factory=OtlpConfig, metadata={"doc": "OTLP metrics exporter."})
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig,
                                         metadata={"doc": "Prometheus pull endpoint."})
    console: ConsoleConfig = field(default_factory=ConsoleConfig,
                                   metadata={"doc": "Terminal summary."})


@dataclass(frozen=True)
class EnaConfig:
    enabled: bool = key(True, "Read the ENA allowance counters of every ENA interface.")
    interfaces: list[str] = key([], "Interface name patterns to read (glob); empty means every "
                                "interface whose driver is ena.")
    compat_node_net_ethtool: bool = key(True, "Also emit node_net_ethtool{device,type} so the "
                                        "EKS guide's rules work unchanged.")
    replay: str = key("", "Path of an ethtool recording to replay instead of the ioctl (tests, "
                      "demos: this machine has no ENA NIC).")


@dataclass(frozen=True)
class EthtoolConfig:
    enabled: bool = key(False, "Export driver statistics of other interfaces too (opt-in).")
    interfaces: list[str] = key(["*"], "Interface name patterns to include (glob).")
    exclude_interfaces: list[str] = key(["lo"], "Interface name patterns to skip.")
    include_stats: list[str] = key(["*"], "Statistic name patterns to include.")
    exclude_stats: list[str] = key(["*queue_*", "cpu*"], "Statistic name patterns to skip "
                                   "(per-queue and per-CPU stats explode series).")


@dataclass(frozen=True)
class NetdevConfig:
    enabled: bool = key(True, "Bytes, packets, errors and drops of the host's interfaces.")
    exclude_interfaces: list[str] = key([], "Interface name patterns to skip.")


POD_PROBES = ("netdev", "snmp", "netstat", "snmp6", "sockstat", "conntrack", "tcpsummary",
              "tcpqueues", "tcprtt", "fd", "io", "cpu")
NODE_PROBES = ("softnet", "slab", "sockstat", "conntrack")


@dataclass(frozen=True)
class PodNetConfig:
    enabled: bool = key(True, "Kernel network counters of every network namespace, per pod.")
    probes: list[str] = key(["netdev", "snmp", "netstat", "snmp6", "sockstat", "conntrack",
                             "tcpsummary", "cpu"],
                            "What to read per namespace. Off by default because of their cost: "
                            "tcpqueues (walks the node's whole TCP hash table per namespace, "
                            "~8 ms each on a large node), tcprtt (RTT of established "
                            "sockets through sock_diag: a hash walk too, and CAP_SYS_ADMIN "
                            "for setns), fd and io (every process of every pod).",
                            choices=POD_PROBES)
    cgroup_root: str = key("/sys/fs/cgroup", "Where the host's cgroup hierarchies are mounted "
                           "(v1 controllers, or the v2 unified tree, or both).")
    include_host: bool = key(True, "Also export the node's own network namespace "
                             "(netns.kind=host; where hostNetwork pods live).")
    export_quiet: bool = key(False, "Export per-pod counters that never left zero. Off: such a "
                             "series is sent from the cycle it first moves, with a zero "
                             "baseline one cycle earlier, so rate() and increase() see the "
                             "first increment.")
    verbose: bool = key(False, "Add k8s.pod.ip and the pod labels listed in `labels`.")
    labels: list[str] = key([], "Pod label keys to add as k8s.pod.label.<key> when verbose.")


@dataclass(frozen=True)
class NodeNetConfig:
    enabled: bool = key(True, "Node-wide kernel network state: softnet, TCP slab, sockstat "
                        "memory and orphans, conntrack limit.")
    probes: list[str] = key(list(NODE_PROBES), "What to read.", choices=NODE_PROBES)


# from the registered probes (bpf/probes/): never listed here
BPF_PROBES = tuple(PROBES)
_OPT_IN = "; ".join(f"{p.name} {p.opt_in}" for p in REGISTERED if p.opt_in)
_EVENT_OPT_IN = ", ".join(t.name for t in EVENT_TYPE_UNITS if not t.default)


def ip_addresses(values: Iterable[str]) -> None:
    """Every item is one IP address (IPv4 or IPv6), not a name or a range."""
    for text in values:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address (like 169.254.169.253 or "
                             "fd00:ec2::253)") from None


@dataclass(frozen=True)
class DnsProbeConfig:
    ports: list[int] = key([53], "Ports a DNS server listens on (UDP and TCP), e.g. add a "
                           "NodeLocal DNSCache or CoreDNS port other than 53.")
    cluster_dns: list[str] = key([], "Addresses of the cluster DNS service (kube-dns "
                                 "ClusterIP): dns.resolver.class cluster_dns.", check=ip_addresses)
    node_local_dns: list[str] = key(["169.254.20.10"], "NodeLocal DNSCache addresses: "
                                    "dns.resolver.class node_local, link-local service "
                                    "node_local_dns (answered on the node: never counted "
                                    "against the ENI allowance).", check=ip_addresses)
    amazon_dns: list[str] = key(["169.254.169.253", "fd00:ec2::253"], "Amazon DNS resolver "
                                "addresses: dns.resolver.class amazon, link-local service "
                                "amazon_dns.", check=ip_addresses)
    vpc_cidrs: list[str] = key([], "IPv4 CIDRs of the VPC: their base address plus two is the "
                               "Amazon DNS resolver too.")
    imds: list[str] = key(["169.254.169.254", "fd00:ec2::254"], "Instance metadata service "
                          "addresses (link-local service imds).", check=ip_addresses)
    time_sync: list[str] = key(["169.254.169.123", "fd00:ec2::123"], "Amazon Time Sync "
                               "addresses (link-local service time_sync).", check=ip_addresses)
    pod_identity: list[str] = key(["169.254.170.23", "fd00:ec2::23"],
                                  "EKS Pod Identity agent addresses (link-local service "
                                  "pod_identity, answered on the node: never counted against "
                                  "the ENI allowance).", check=ip_addresses)
    cgroup_root: str = key("/sys/fs/cgroup", "Where the host's cgroup hierarchies are mounted: "
                           "the v2 tree (<root>/unified, else <root>) names the pod of a "
                           "hostNetwork socket's link-local packets by its cgroup id.")
    peak_window: float = key(15.0, "netreceiver.linklocal.peak_packets_per_second covers at "
                             "least this many past seconds: set it to the collection "
                             "interval, so a collection a node-API question triggers between "
                             "two scheduled ones cannot take a burst from the exported gauge. "
                             "0: only the seconds since the previous collection.",
                             duration=True, minimum=0.0)
    max_pending: int = key(16384, "Outstanding client queries tracked node-wide, and as many "
                           "timed-out ones kept for late answers (the oldest forgotten beyond "
                           "it): one kernel hash table of twice this size; a query finding it "
                           "full is not matched and is counted lost.", minimum=64)


@dataclass(frozen=True)
class EbpfConfig:
    enabled: bool = key(True, "Load bcc eBPF probes (needs Debian's python3-bpfcc, root or "
                        "CAP_BPF+CAP_PERFMON, tracefs, a kernel build tree for bcc).")
    probes: list[str] = key(list(DEFAULT_PROBES),
                            "Which probes to load. The per-packet probes are opt-in, each "
                            "costing the workload more than the 3 % per-packet budget on a "
                            f"busy flow: {_OPT_IN} (docs/architecture.md, Per-packet budget; "
                            "BENCHMARKS.md).", choices=BPF_PROBES)
    btf_path: str = key("/sys/kernel/btf/vmlinux", "The running kernel's BTF (struct offsets "
                        "for namespace attribution).")
    retrans_peers: int = key(0, "Also count retransmissions per remote address and port, per "
                             "pod, for at most this many endpoints node-wide (a kernel map of "
                             "that size; endpoints past it count in netreceiver.bpf.lost, and "
                             "max_series_per_instrument still applies). 0: off.", minimum=0)
    peers_top: int = key(5, "The peers probe: per pod and collection interval, this many remote "
                         "peers with the most bytes as OTLP log records (peer.top: the peer's "
                         "pod or node name where this node knows it, else its address; "
                         "exporters.otlp's endpoint). Counted per peer address in a kernel LRU "
                         "table (one more lookup per packet to another pod or host; "
                         "BENCHMARKS.md). 0: off, no per-peer table.", minimum=0)
    peers_top_records: int = key(1000, "peer.top records per collection interval node-wide; "
                                 "the rest are counted in netreceiver.events.dropped (reason "
                                 "interval_cap).", minimum=1)
    timing_sample: int = key(64, "Time one in this many NET_RX/NET_TX softirq runs and queued "
                             "packets, chosen at random in the kernel (net_softirq, netiftxlat "
                             "and the NET_SOFTIRQ_SLOW and NETIF_TXLAT_SLOW event records): the "
                             "histograms' counts and sums are the timed ones multiplied by it. "
                             "Keeps these per-packet probes within the per-packet budget "
                             "(docs/architecture.md); 1 times every one.", minimum=1)
    use_bcc: bool = key(True, "false reports every probe unavailable, as on a host without bcc.")
    tracefs_path: str = key("", "Where tracefs is mounted; empty: /sys/kernel/tracing, else "
                            "/sys/kernel/debug/tracing, mounting it if neither is.")
    dns: DnsProbeConfig = field(default_factory=DnsProbeConfig,
                                metadata={"doc": "The dns probe: ports and service addresses."})


EVENT_TYPES = EVENT_NAMES


@dataclass(frozen=True)
class EventsConfig:
    enabled: bool = key(True, "Send kernel event records as OTLP logs (exporters.otlp's endpoint "
                        "with logs_path); nothing is loaded without an endpoint. Uses "
                        "collectors.ebpf's btf_path, use_bcc and tracefs_path.")
    types: list[str] = key(list(DEFAULT_EVENT_TYPES),
                           f"Event types to record; opt-in: {_EVENT_OPT_IN} (NET_SOFTIRQ_SLOW "
                           "and NETIF_TXLAT_SLOW run on every network softirq and every "
                           "transmitted packet: docs/architecture.md, Per-packet budget).",
                           choices=EVENT_TYPES)
    kernel_budget: int = key(100, "Records per type, per CPU and second that may leave the "
                             "kernel; the rest are counted in netreceiver.events.dropped "
                             "(reason rate_limit_kernel).", minimum=1)
    rate_limit: float = key(50.0, "Records per type and second the agent passes on (token "
                            "bucket, node-wide), counted as rate_limit_user beyond.",
                            minimum=0.001)
    burst: int = key(100, "Records per type the token bucket lets through at once.", minimum=1)
    softirq_threshold: float = key(0.005, "NET_SOFTIRQ_SLOW: softirq schedule delay or run "
                                   "time above this, among the runs watched (one in "
                                   "collectors.ebpf.timing_sample).", duration=True,
                                   minimum=0.000001)
    txlat_threshold: float = key(0.005, "NETIF_TXLAT_SLOW: queue-to-xmit time above this, "
                                 "among the packets watched (one in "
                                 "collectors.ebpf.timing_sample).",
                                 duration=True, minimum=0.000001)
    stack_traces: bool = key(False, "Attach the kernel stack (BPF_STACK_TRACE, symbolised "
                             "from kallsyms) to every record.")
    max_queue_size: int = key(2048, "Records waiting for export; beyond, counted as "
                              "queue_full.", minimum=1, env="OTEL_BLRP_MAX_QUEUE_SIZE")
    max_export_batch_size: int = key(512, "Records per OTLP request.", minimum=1,
                                     env="OTEL_BLRP_MAX_EXPORT_BATCH_SIZE")
    schedule_delay: float = key(1.0, "Longest wait before a partial batch is sent.",
                                duration=True, minimum=0.01, env="OTEL_BLRP_SCHEDULE_DELAY")
    export_timeout: float = key(10.0, "Deadline of one batch's export, retries included.",
                                duration=True, minimum=0.1, env="OTEL_BLRP_EXPORT_TIMEOUT")


@dataclass(frozen=True)
class CollectorsConfig:
    ena: EnaConfig = field(default_factory=EnaConfig, metadata={"doc": "ENA allowances."})
    ethtool: EthtoolConfig = field(default_factory=EthtoolConfig,
                                   metadata={"doc": "Generic ethtool statistics."})
    netdev: NetdevConfig = field(default_factory=NetdevConfig,
                                 metadata={"doc": "Host interface counters."})
    podnet: PodNetConfig = field(default_factory=PodNetConfig,
                                 metadata={"doc": "Per-pod kernel network counters "
                                                  "(the ACK Net Exporter set)."})
    nodenet: NodeNetConfig = field(default_factory=NodeNetConfig,
                                   metadata={"doc": "Node-wide kernel network state."})
    ebpf: EbpfConfig = field(default_factory=EbpfConfig,
                             metadata={"doc": "bcc eBPF probes (drops, resets, "
                                              "retransmits, latency)."})
    events: EventsConfig = field(default_factory=EventsConfig,
                                 metadata={"doc": "Kernel event records (OTLP logs)."})


@dataclass(frozen=True)
class ImdsConfig:
    enabled: bool | None = key(None, "Query EC2 instance metadata (IMDSv2); null means try "
                               "once and stay quiet off EC2.", env="AWS_EC2_METADATA_DISABLED")
    endpoint: str = key("http://169.254.169.254", "IMDS base URL.",
                        env="AWS_EC2_METADATA_SERVICE_ENDPOINT")
    timeout: float = key(1.0, "Timeout of each IMDS request.", duration=True, minimum=0.05)


@dataclass(frozen=True)
class KubernetesConfig:
    enabled: bool | None = key(None, "Watch this node's pods for names, namespaces and labels; "
                               "null means when a service account or kubeconfig is found.")
    kubeconfig: str = key("", "kubeconfig file when not in a cluster.", env="KUBECONFIG")


def cidrs(values: Iterable[str]) -> None:
    """Every item (list items, mapping keys) is an address range in CIDR notation."""
    for text in values:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not a CIDR (like 10.1.0.0/16 or fd00:1::/64)") from None


@dataclass(frozen=True)
class PeersConfig:
    subnets: dict[str, str] = key({}, "Zones of ranges neither DescribeSubnets nor Node objects "
                                  "cover, such as a peered VPC's subnets: CIDR to zone name. "
                                  "Counted as same_zone or other_zone; a longer prefix found "
                                  "elsewhere still wins.", check=cidrs)
    other_ranges: list[str] = key([], "Ranges that are neither this VPC nor the internet "
                                  "(peered VPCs without known zones, on-premises networks over "
                                  "Direct Connect or VPN), counted as other_vpc. The private "
                                  "ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) "
                                  "already are.", check=cidrs)
    describe_subnets: bool | None = key(None, "Ask EC2 DescribeSubnets for the zone of every "
                                        "subnet of the node's VPC (IAM ec2:DescribeSubnets; "
                                        "botocore, the amp extra; botocore's credential chain). "
                                        "null: when IMDS names the VPC and botocore is "
                                        "installed.")
    ec2_endpoint: str = key("", "EC2 API endpoint; empty: the region's (IMDS, else "
                            "AWS_REGION).", env="AWS_ENDPOINT_URL_EC2")
    refresh: float = key(600.0, "How often the subnet list is asked again (sooner after a "
                         "failure).", duration=True, minimum=60.0)
    node_watch: bool | None = key(None, "Watch the cluster's Node objects (one cluster-wide "
                                  "watch; RBAC get/list/watch on nodes) for their zones and "
                                  "addresses. null: when the Kubernetes API is configured.")
    service_watch: bool | None = key(None, "Watch the cluster's Service objects (one "
                                     "cluster-wide watch; RBAC get/list/watch on services): "
                                     "traffic to a ClusterIP is counted as peer.class service "
                                     "and top-peer records name the Service. null: when the "
                                     "Kubernetes API is configured.")
    service_ranges: list[str] = key([], "The cluster's Service CIDRs (EKS: 10.100.0.0/16 or "
                                    "172.20.0.0/16, the cluster's kubernetesNetworkConfig), "
                                    "counted as service: for when the Service watch is off or "
                                    "not yet listed. A longer prefix found elsewhere still "
                                    "wins.", check=cidrs)


@dataclass(frozen=True)
class CorrelationConfig:
    enabled: bool = key(True, "Keep a recent history of the counters the diagnosis rules read "
                        "and serve the node API that the SDK asks at the moment of an error "
                        "(docs/node-api.md).")
    host: str = key("", "Address of the node API's TCP listener; the DaemonSet sets the node "
                    "address (status.hostIP). Empty: no TCP listener.",
                    env="OTEL_NETRECEIVER_API_HOST")
    port: int = key(19102, "Port of the node API's TCP listener.", minimum=0)
    socket: str = key("", "Unix socket of the node API, e.g. /run/otel-netreceiver/api.sock "
                      "(a hostPath pods can mount); callers are named by SO_PEERCRED. Empty: "
                      "none.", env="OTEL_NETRECEIVER_API_SOCKET")
    history: float = key(300.0, "How far back the history reaches.", duration=True, minimum=10.0)
    resolution: float = key(1.0, "Sampling interval of the history for the node's own "
                            "namespace and for pods that used the API within active_pod_ttl; "
                            "other pods are recorded at the collection interval.",
                            duration=True, minimum=0.5)
    active_pod_ttl: float = key(600.0, "How long a pod that asked stays sampled at the history "
                                "resolution.", duration=True, minimum=0.0)
    rate: float = key(5.0, "Requests per second each caller may make (token bucket).",
                      minimum=0.1)
    burst: int = key(10, "Requests a caller may make at once.", minimum=1)
    max_connections: int = key(32, "Requests served at once; more get 503 at once.", minimum=1)
    diagnose_window: float = key(60.0, "The agent runs every playbook over this last window of "
                                 "its history once per collection interval: findings as the "
                                 "netreceiver.diagnosis.findings gauge and, with an OTLP "
                                 "endpoint, new ones as DIAGNOSIS_FINDING log records. 0: off.",
                                 duration=True, minimum=0.0)


@dataclass(frozen=True)
class AgentConfig:
    interval: float = key(15.0, "Collection interval. ENA reads cost an admin command on the "
                          "device: keep it at 10 s or more on ENA nodes.", duration=True,
                          minimum=1.0)
    jitter: float = key(0.1, "Random fraction of the interval added to each wait, so the "
                        "nodes of a cluster do not all read and export at once.", minimum=0.0)
    proc_root: str = key("/proc", "Where the host's /proc is mounted.")
    sys_root: str = key("/sys", "Where the host's /sys is mounted.")
    node_name: str = key("", "Node name; empty means $K8S_NODE_NAME, $NODE_NAME, then the "
                         "host name.")
    service_name: str = key("otel-netreceiver", "service.name resource attribute.",
                            env="OTEL_SERVICE_NAME")
    resource_attributes: dict[str, str] = key({}, "Extra resource attributes.",
                                              env="OTEL_RESOURCE_ATTRIBUTES")
    max_series_per_instrument: int = key(10000, "Cardinality cap per metric; refused series "
                                         "are counted in netreceiver.series.dropped.", minimum=1)
    log_level: str = key("info", "Log level.", choices=("debug", "info", "warning", "error"))
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig,
                                         metadata={"doc": "Which sources to read."})
    exporters: ExportersConfig = field(default_factory=ExportersConfig,
                                       metadata={"doc": "Where the series go."})
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig,
                                           metadata={"doc": "History and the node API."})
    imds: ImdsConfig = field(default_factory=ImdsConfig, metadata={"doc": "EC2 metadata."})
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig,
                                         metadata={"doc": "Pod metadata from the API server."})
    peers: PeersConfig = field(default_factory=PeersConfig,
                               metadata={"doc": "Where peer zones come from (traffic by peer "
                                                "class)."})
