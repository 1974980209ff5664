"""Every configuration key, its type, default and meaning: the one place defaults live.

The loader walks these dataclasses to validate a YAML file, and
``docs/configuration.md`` is generated from them, so a key documented there
is a key the agent accepts. ``doc`` metadata says what a key is for; ``env``
names the standard variable that fills it when the file leaves it unset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def key(default: Any, doc: str, *, env: str = "", choices: tuple[str, ...] = (),
        minimum: float | None = None, duration: bool = False) -> Any:
    """A dataclass field carrying its documentation and validation metadata."""
    meta = {"doc": doc, "env": env, "choices": choices, "minimum": minimum, "duration": duration}
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
    headers: dict[str, str] = key({}, "Extra request headers (gRPC metadata).",
                                  env="OTEL_EXPORTER_OTLP_HEADERS")
    timeout: float = key(10.0, "Deadline of one export, retries included.", duration=True,
                         minimum=0.1, env="OTEL_EXPORTER_OTLP_TIMEOUT")
    compression: str = key("gzip", "Request compression.", choices=("gzip", "none"),
                           env="OTEL_EXPORTER_OTLP_COMPRESSION")


@dataclass(frozen=True)
class PrometheusConfig:
    enabled: bool = key(False, "Serve the current series in Prometheus text format on /metrics.")
    host: str = key("127.0.0.1", "Address to listen on (the DaemonSet sets the node address).")
    port: int = key(9102, "Port of /metrics, /healthz and /readyz.", minimum=0)


@dataclass(frozen=True)
class ConsoleConfig:
    enabled: bool | None = key(None, "Print a periodic summary on the terminal; null means "
                               "on when no OTLP endpoint is configured.")
    show_zero: bool = key(False, "Also list series whose value is zero.")


@dataclass(frozen=True)
class ExportersConfig:
    interval: float | None = key(None, "Export interval; null means the collection interval.",
                                 duration=True, minimum=1.0, env="OTEL_METRIC_EXPORT_INTERVAL")
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
              "tcpqueues", "fd", "io", "cpu")
NODE_PROBES = ("softnet", "slab", "sockstat", "conntrack")


@dataclass(frozen=True)
class PodNetConfig:
    enabled: bool = key(True, "Kernel network counters of every network namespace, per pod.")
    probes: list[str] = key(["netdev", "snmp", "netstat", "snmp6", "sockstat", "conntrack",
                             "tcpsummary", "cpu"],
                            "What to read per namespace. Off by default because of their cost: "
                            "tcpqueues (walks the node's whole TCP hash table per namespace, "
                            "~8 ms each on a large node), fd and io (every process of every "
                            "pod).",
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


BPF_PROBES = ("packetloss", "tcpreset", "tcpretrans", "net_softirq", "netiftxlat",
              "virtcmdlatency")


@dataclass(frozen=True)
class EbpfConfig:
    enabled: bool = key(True, "Load bcc eBPF probes (needs Debian's python3-bpfcc, root or "
                        "CAP_BPF+CAP_PERFMON, tracefs, a kernel build tree for bcc).")
    probes: list[str] = key(["packetloss", "tcpreset", "tcpretrans", "net_softirq",
                             "netiftxlat"], "Which probes to load.", choices=BPF_PROBES)
    btf_path: str = key("/sys/kernel/btf/vmlinux", "The running kernel's BTF (struct offsets "
                        "for namespace attribution).")
    use_bcc: bool = key(True, "false reports every probe unavailable, as on a host without bcc.")
    tracefs_path: str = key("", "Where tracefs is mounted; empty: /sys/kernel/tracing, else "
                            "/sys/kernel/debug/tracing, mounting it if neither is.")


@dataclass(frozen=True)
class CollectorsConfig:
    ena: EnaConfig = field(default_factory=EnaConfig, metadata={"doc": "ENA allowances."})
    ethtool: EthtoolConfig = field(default_factory=EthtoolConfig,
                                   metadata={"doc": "Generic ethtool statistics."})
    netdev: NetdevConfig = field(default_factory=NetdevConfig,
                                 metadata={"doc": "Host interface counters."})
    podnet: PodNetConfig = field(default_factory=PodNetConfig,
                                 metadata={"doc": "Per-pod kernel network counters (seed 002)."})
    nodenet: NodeNetConfig = field(default_factory=NodeNetConfig,
                                   metadata={"doc": "Node-wide kernel network state."})
    ebpf: EbpfConfig = field(default_factory=EbpfConfig,
                             metadata={"doc": "bcc eBPF probes (seed 002's probes)."})


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
    imds: ImdsConfig = field(default_factory=ImdsConfig, metadata={"doc": "EC2 metadata."})
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig,
                                         metadata={"doc": "Pod metadata from the API server."})
