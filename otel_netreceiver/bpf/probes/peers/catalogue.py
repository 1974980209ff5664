"""The peers probe's metrics: catalogue rows (catalogue.py adds them to the per-pod table).

No addresses as attributes: the peer's class (8 values), its zone (the cluster's zones)
and the direction.
"""

from __future__ import annotations

from otel_netreceiver.bpf.probe import MetricRow
from otel_netreceiver.model import Kind

ATTRIBUTES = ("peer.class", "peer.zone", "network.io.direction")
_WHERE = (" peer.class: same_pod (the pod's loopback), same_node (this node's pods and "
          "addresses), same_zone, other_zone, other_vpc (private and peers.other_ranges "
          "addresses outside the known zones), internet (anything else), link_local or "
          "service (a Kubernetes Service's ClusterIP, from the Service watch or "
          "peers.service_ranges: counted at the client as the ClusterIP its socket sees, "
          "the backend's zone unknown there; the server end counts the real client); "
          "peer.zone: the peer's availability zone where known (same_zone, other_zone, "
          "same_node). Seen at the pod's sockets (cgroup_skb on the cgroup v2 root; probe "
          "peers, opt-in), classed in the kernel by one lookup in a longest-prefix table "
          "of the zone sources (peers: DescribeSubnets, Node and Service objects, configuration).")

METRICS: tuple[MetricRow, ...] = (
    MetricRow("netreceiver.pod.peer.packets", Kind.COUNTER, "{packet}", ATTRIBUTES,
              "IP packets the pod's sockets sent (transmit) or received (receive), by the "
              "peer's class and zone; a TSO or GRO aggregate counts as the packets it "
              "stands for." + _WHERE, pod=True),
    MetricRow("netreceiver.pod.peer.bytes", Kind.COUNTER, "By", ATTRIBUTES,
              "Bytes of netreceiver.pod.peer.packets: each packet's IP total length (IP "
              "header included, link-layer header not), the headers of the segments of a "
              "TSO or GRO aggregate included." + _WHERE, pod=True),
)
