"""Top-peer log records (peers/records.py): ranking, naming, the per-interval cap, counting."""

from __future__ import annotations

import ipaddress

from otel_netreceiver.bpf.probes import UNITS
from otel_netreceiver.bpf.probes.peers.spec import defines, text
from otel_netreceiver.bpf.programs import source
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.events.model import summary
from otel_netreceiver.events.otlp_logs import event_attributes
from otel_netreceiver.k8s.directory import PodMeta
from otel_netreceiver.k8s.nodes import NodeInfo
from otel_netreceiver.peers.classes import PeerClass
from otel_netreceiver.peers.records import (
    EVENT_NAME,
    PeerNames,
    PeerRecords,
    PeerRow,
    address_text,
    top_rows,
)


def raw(address: str) -> bytes:
    ip = ipaddress.ip_address(address)
    return (ipaddress.IPv6Address(f"::ffff:{ip}") if ip.version == 4 else ip).packed


def row(netns: int, address: str, nbytes: int, egress: bool = True,
        cls: PeerClass = PeerClass.OTHER_ZONE, zone: int = 2, packets: int = 1) -> PeerRow:
    return PeerRow(netns, raw(address), egress, int(cls), zone, packets, nbytes)


class Pods:
    def __init__(self, *pods: PodMeta) -> None:
        self._pods = pods

    def by_ip(self, ip: str) -> PodMeta | None:
        return next((p for p in self._pods if ip in p.ips), None)


WEB = PodMeta("u1", "web-1", "shop", "10.0.2.5", ips=("10.0.2.5",))
HOSTNET = PodMeta("u2", "kube-proxy", "kube-system", "10.0.9.9", host_network=True,
                  ips=("10.0.9.9",))
NODES = (NodeInfo("node-b", "zone-b", ("10.0.9.9",), ()),)


def test_addresses_come_back_in_their_family_form() -> None:
    assert address_text(raw("10.1.2.3")) == "10.1.2.3"
    assert address_text(raw("2001:db8::7")) == "2001:db8::7"


def test_each_pod_keeps_its_largest_peers_by_bytes_in_a_stable_order() -> None:
    rows = [row(1, "10.0.0.1", 100), row(1, "10.0.0.2", 900), row(1, "10.0.0.3", 500),
            row(1, "10.0.0.2", 900, egress=False), row(2, "10.0.0.9", 5)]
    top = top_rows(rows, 3)
    assert [(address_text(r.address), r.egress) for r in top[1]] == [
        ("10.0.0.2", False), ("10.0.0.2", True), ("10.0.0.3", True)]
    assert [r.bytes for r in top[2]] == [5]


def test_peers_are_named_by_pod_then_node_then_address() -> None:
    names = PeerNames(Pods(WEB, HOSTNET), lambda: NODES)
    names.refresh()
    assert names("10.0.2.5") == {"peer.kind": "pod", "peer.name": "shop/web-1",
                                 "peer.k8s.pod.name": "web-1",
                                 "peer.k8s.namespace.name": "shop"}
    # a hostNetwork pod shares its node's address: the node names it, not the pod
    assert names("10.0.9.9") == {"peer.kind": "node", "peer.name": "node-b",
                                 "peer.k8s.node.name": "node-b"}
    assert names("198.51.100.7") == {"peer.kind": "address", "peer.name": "198.51.100.7"}


def _records(cap: int, top: int = 2) -> tuple[PeerRecords, list]:
    sent: list = []
    sink_dropped = {(EVENT_NAME, "queue_full"): 1, ("TCP_RESET", "queue_full"): 4}
    records = PeerRecords(lambda e: sent.append(e) or True, top, cap,
                          PeerNames(Pods(WEB), lambda: NODES), lambda: sink_dropped)
    return records, sent


def test_records_carry_the_pod_the_peer_and_what_moved() -> None:
    records, sent = _records(cap=10)
    pod = (("k8s.namespace.name", "shop"), ("k8s.pod.name", "api-0"))
    records.publish([row(1, "10.0.2.5", 4000, packets=3), row(1, "10.0.9.9", 10, zone=0,
                                                                 cls=PeerClass.SAME_NODE)],
                    lambda n: pod, {2: "zone-b"}.get, 123)
    first = dict(event_attributes(sent[0]))
    assert first == {"event.name": "peer.top", "k8s.namespace.name": "shop",
                     "k8s.pod.name": "api-0", "network.peer.address": "10.0.2.5",
                     "network.type": "ipv4", "network.io.direction": "transmit",
                     "peer.class": "other_zone", "peer.zone": "zone-b", "peer.bytes": 4000,
                     "peer.packets": 3, "peer.rank": 1, "peer.kind": "pod",
                     "peer.name": "shop/web-1", "peer.k8s.pod.name": "web-1",
                     "peer.k8s.namespace.name": "shop"}
    assert summary(sent[0]) == ("peer.top shop/api-0 -> shop/web-1 (10.0.2.5) other_zone "
                                "zone-b: 4000 B in 3 packets")
    second = dict(event_attributes(sent[1]))
    assert second["peer.name"] == "node-b" and "peer.zone" not in second
    assert sent[0].time_unix_nano == 123 and sent[0].severity_text == "INFO"


def test_the_interval_cap_and_dead_pods_and_the_drop_counts() -> None:
    records, sent = _records(cap=3)
    rows = [row(n, f"10.0.0.{i}", 100 * i) for n in (1, 2, 3) for i in (1, 2)]
    alive = {1: (("k8s.pod.name", "a"),), 2: (("k8s.pod.name", "b"),)}
    records.publish(rows, alive.get, lambda z: "", 1)  # namespace 3 is dead: skipped
    assert len(sent) == 3 and records.delivered == 3
    got = {(p.metric.name, p.attributes): p.value for p in records.points()}
    assert got == {
        ("netreceiver.events", (("event.name", "peer.top"),)): 3,
        ("netreceiver.events.dropped", (("event.name", "peer.top"), ("reason", "interval_cap"))): 1,
        ("netreceiver.events.dropped", (("event.name", "peer.top"), ("reason", "queue_full"))): 1}
    records.publish(rows, alive.get, lambda z: "", 2)  # the cap is per interval
    assert len(sent) == 6


def test_the_per_peer_table_is_compiled_only_with_top_peers_on() -> None:
    assert "PEER_TOP_MAX" in defines({}, EbpfConfig(probes=["peers"]))
    off = defines({}, EbpfConfig(probes=["peers"], peers_top=0))
    assert "PEER_TOP_MAX" not in off
    spec = UNITS["peers"].counting
    assert spec is not None
    program = text(source(spec), {})
    assert "#ifdef PEER_TOP_MAX" in program and "lru_percpu_hash" in program


def test_no_pipeline_without_the_probe_the_records_or_a_logs_endpoint() -> None:
    from otel_netreceiver.config.loader import load_text
    from otel_netreceiver.export.settings import resolve_loaded
    from otel_netreceiver.k8s.directory import NoPods
    from otel_netreceiver.peers import pipeline

    def built(text: str) -> object:
        loaded = load_text(text, "t.yaml")
        logs = resolve_loaded(loaded.config, loaded.explicit, {}, "logs")
        made = pipeline.build(loaded.config, logs, {}, NoPods(), tuple)
        if made is not None:
            made.close()
        return made

    otlp = "exporters: {otlp: {endpoint: 'http://127.0.0.1:9'}}\n"
    assert built(otlp + "collectors: {ebpf: {probes: [peers]}}") is not None
    assert built(otlp + "collectors: {ebpf: {probes: [peers], peers_top: 0}}") is None
    assert built(otlp) is None  # the peers probe is opt-in
    assert built("collectors: {ebpf: {probes: [peers]}}") is None  # nowhere to send


def test_the_take_falls_back_to_read_then_delete_without_the_batch_call() -> None:
    from otel_netreceiver.bpf.probes.peers.reader import take

    class OldKernel(dict):
        def items_lookup_and_delete_batch(self) -> None:
            raise Exception("BPF_MAP_LOOKUP_AND_DELETE_BATCH has failed: Invalid argument")

    class NewKernel(dict):
        def items_lookup_and_delete_batch(self):  # type: ignore[no-untyped-def]
            rows = list(self.items())
            self.clear()
            yield from rows

    for table in (OldKernel(a=1, b=2), NewKernel(a=1, b=2)):
        assert sorted(take(table)) == [("a", 1), ("b", 2)] and not table
