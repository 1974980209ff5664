"""Top peers as OTLP log records (``peer.top``): per pod and interval, who it moved most bytes with.

A metric with the peer as an attribute would be one series per (pod, peer) and an address as
a metric attribute; neither is allowed (docs/architecture.md). So the peers probe keeps
per-peer counts in a bounded kernel LRU table (bpf/probes/peers/counting.c, ``peer_top``),
its reader takes them once per collection interval (lookup-and-delete), and this module turns
each pod's few largest peers into log records through the event pipeline's processor
(events/sdk_logs.py: its queue bound and drop counts), then to OTLP logs.

The peer is named by what this node knows: a pod on this node (the pod watch: namespace and
name), a Service's ClusterIP (the Service watch: namespace/name; at the client end the pod's
socket sees the ClusterIP, not the backend kube-proxy picks later), a node of the cluster
(the Node watch: its name), else its address. Records are capped
per interval node-wide (``collectors.ebpf.peers_top_records``); what the cap or the queue
refuses is counted in netreceiver.events.dropped like every other record.

``top_rows``, ``PeerNames`` and ``peer_event`` are pure; ``PeerRecords`` holds the counters.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from otel_netreceiver.k8s.nodes import NodeInfo
from otel_netreceiver.k8s.services import ServiceInfo
from otel_netreceiver.model import Attributes, Point, attrs
from otel_netreceiver.peers.classes import PeerClass

if TYPE_CHECKING:  # events.model imports the registered probes, whose reader imports this
    from otel_netreceiver.events.model import Event

EVENT_NAME = "peer.top"
SEVERITY_NUMBER, SEVERITY_TEXT = 9, "INFO"  # the logs data model's INFO
DIRECTIONS = ("receive", "transmit")  # the kernel key's egress flag


@dataclass(frozen=True, slots=True)
class PeerRow:
    """One row of the kernel's per-peer table, summed over CPUs."""

    netns: int  # namespace cookie
    address: bytes  # 16 bytes, IPv4 as ::ffff:a.b.c.d
    egress: bool
    peer_class: int
    zone: int
    packets: int
    bytes: int


def address_text(raw: bytes) -> str:
    """The kernel key's 16 bytes as an address; IPv4-mapped ones in dotted form."""
    ip = ipaddress.IPv6Address(raw)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def top_rows(rows: Iterable[PeerRow], count: int) -> dict[int, list[PeerRow]]:
    """Namespace → its ``count`` (peer, direction) rows with the most bytes, largest first
    (ties: more packets, then the address, so the choice is stable)."""
    by_netns: defaultdict[int, list[PeerRow]] = defaultdict(list)
    for row in rows:
        by_netns[row.netns].append(row)
    return {netns: sorted(group, key=lambda r: (-r.bytes, -r.packets, r.address,
                                                r.egress))[:count]
            for netns, group in by_netns.items()}


class PodsByAddress(Protocol):
    def by_ip(self, ip: str) -> Any: ...


class PeerNames:
    """Address → the peer's name attributes: this node's pod, a Service's ClusterIP, a
    cluster node, else none.

    The node and Service indexes are rebuilt by ``refresh`` (once per interval, before
    naming)."""

    def __init__(self, pods: PodsByAddress,
                 nodes: Callable[[], Iterable[NodeInfo]] = tuple,
                 services: Callable[[], Iterable[ServiceInfo]] = tuple) -> None:
        self._pods, self._nodes, self._services = pods, nodes, services
        self._node_of: dict[str, str] = {}
        self._service_of: dict[str, ServiceInfo] = {}

    def refresh(self) -> None:
        self._node_of = {a: n.name for n in self._nodes() for a in n.addresses}
        self._service_of = {str(ipaddress.ip_address(a)): s for s in self._services()
                            for a in s.cluster_ips}

    def __call__(self, address: str) -> dict[str, str]:
        pod = self._pods.by_ip(address)
        if pod is not None and pod.name and not getattr(pod, "host_network", False):
            return {"peer.kind": "pod", "peer.name": f"{pod.namespace}/{pod.name}",
                    "peer.k8s.pod.name": pod.name, "peer.k8s.namespace.name": pod.namespace}
        service = self._service_of.get(address)
        if service is not None:
            return {"peer.kind": "service", "peer.name": service.key,
                    "peer.k8s.service.name": service.name,
                    "peer.k8s.namespace.name": service.namespace}
        node = self._node_of.get(address, "")
        if node:
            return {"peer.kind": "node", "peer.name": node, "peer.k8s.node.name": node}
        return {"peer.kind": "address", "peer.name": address}


def class_label(number: int) -> str:
    try:
        return PeerClass(number).label
    except ValueError:
        return str(number)


def peer_event(row: PeerRow, pod: Attributes, names: Callable[[str], dict[str, str]],
               zone_name: Callable[[int], str], time_ns: int, rank: int) -> Event:
    """One record: the pod (its attributes), the peer (address, name, class, zone), the
    direction and what moved in the interval. OpenTelemetry semantic conventions where they
    exist (network.peer.address, network.type, network.io.direction, k8s.*)."""
    from otel_netreceiver.events.model import Event  # at call time: see the imports
    address = address_text(row.address)
    own = {"network.peer.address": address,
           "network.type": "ipv6" if ":" in address else "ipv4",
           "network.io.direction": DIRECTIONS[1 if row.egress else 0],
           "peer.class": class_label(row.peer_class), "peer.bytes": row.bytes,
           "peer.packets": row.packets, "peer.rank": rank, **names(address)}
    if zone_name(row.zone):
        own["peer.zone"] = zone_name(row.zone)
    return Event(EVENT_NAME, SEVERITY_NUMBER, SEVERITY_TEXT, time_ns, row.netns, pod, None,
                 None, "", "", (), tuple(sorted(own.items())),  # type: ignore[arg-type]
                 body=_body(pod, own))


def _body(pod: Attributes, own: dict) -> str:
    """'shop/api-0 -> shop/web-1 (10.0.2.5) other_zone us-east-1b: 4000 B in 3 packets'."""
    p = dict(pod)
    who = ("/".join(filter(None, (p.get("k8s.namespace.name"), p["k8s.pod.name"])))
           if p.get("k8s.pod.name")
           else p.get("k8s.pod.uid") or f"netns {p.get('netns.inode', '?')}")
    peer = own["peer.name"] + ("" if own["peer.kind"] == "address"
                               else f" ({own['network.peer.address']})")
    arrow = "->" if own["network.io.direction"] == "transmit" else "<-"
    where = " ".join(filter(None, (own["peer.class"], own.get("peer.zone", ""))))
    return (f"{EVENT_NAME} {who} {arrow} {peer} {where}: {own['peer.bytes']} B in "
            f"{own['peer.packets']} packets")


class PeerRecords:
    """Emits each interval's top peers, within the per-interval cap, and counts them.

    ``emit`` is the event processor's (False when its queue refused the record: counted
    there, reason queue_full); ``dropped_by_sink`` reads the processor's counts back so
    every loss is in one counter."""

    def __init__(self, emit: Callable[[Event], bool], top: int, cap: int, names: PeerNames,
                 dropped_by_sink: Callable[[], dict[tuple[str, str], int]] = dict) -> None:
        self._emit, self.top, self.cap, self._names = emit, top, cap, names
        self._sink_dropped = dropped_by_sink
        self.delivered = 0
        self.dropped: defaultdict[str, int] = defaultdict(int)  # reason → records

    def publish(self, rows: Iterable[PeerRow], pod: Callable[[int], Attributes | None],
                zone_name: Callable[[int], str], time_ns: int) -> None:
        """``pod`` gives a live namespace's attributes, None for a dead one (skipped: nothing
        is attributed to a pod that is gone)."""
        budget = self.cap
        self._names.refresh()
        for netns, best in sorted(top_rows(rows, self.top).items()):
            labels = pod(netns)
            if labels is None:
                continue
            for rank, row in enumerate(best, 1):
                if budget <= 0:
                    self.dropped["interval_cap"] += 1
                    continue
                budget -= 1
                if self._emit(peer_event(row, labels, self._names, zone_name, time_ns, rank)):
                    self.delivered += 1

    def points(self) -> list[Point]:
        """netreceiver.events and netreceiver.events.dropped for ``peer.top``."""
        from otel_netreceiver.catalogue import metric  # the catalogue imports the probes

        dropped = dict(self.dropped)
        for (name, reason), count in self._sink_dropped().items():
            if name == EVENT_NAME:
                dropped[reason] = dropped.get(reason, 0) + count
        out = [Point(metric("netreceiver.events"), attrs({"event.name": EVENT_NAME}),
                     self.delivered)]
        out += [Point(metric("netreceiver.events.dropped"),
                      attrs({"event.name": EVENT_NAME, "reason": reason}), count)
                for reason, count in sorted(dropped.items())]
        return out
