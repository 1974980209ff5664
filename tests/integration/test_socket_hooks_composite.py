"""The socket-hook probes (dns, peers) in one program count what each counts alone.

Two test pods: a client and a DNS server (tests/support/dns_server.py) in subnets the peer
table puts in zone-a (this node's) and zone-b. Three collectors are loaded at once, so they
see the same packets: dns alone, peers alone, and both (one object, one egress and one
ingress program: bpf/compose_hooks.py). The client asks the server over UDP and TCP, sends
datagrams to an address configured as Time Sync (link-local) and to the server; each pod's
dns, link-local and peer series moved by the same amounts in the composite as in the two
alone. A composite the compiler refuses falls back to one object each, counting the same;
with the DNS failure records on, their handler is in the composite (still one program per
direction), and refused so, the composite loads without them and the records alone;
a rewrite of the peer table reaches the packets that follow although the program caches
the last peer's class (the generation, peers/spec.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import (
    DnsProbeConfig,
    EbpfConfig,
    EventsConfig,
    PeersConfig,
)
from otel_netreceiver.events.hosting import EventHosting
from otel_netreceiver.events.model import Event
from otel_netreceiver.events.source import EventSource, settings_of
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from otel_netreceiver.peers.sources import PeerZones
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.dns_pods import DNS_TYPES
from tests.support.pods import Pod, _die_with_parent, create_pod, destroy_pod
from tests.support.sdk_node import link_pods

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
CLIENT, SERVER = 151, 152
QUERIES = ["ok.test/A/udp/2", "ok.test/A/udp/2", "ok.test/AAAA/udp/2", "nx.test/A/udp/2",
           "tc.test/A/udp/2", "tc.test/A/tcp/2"]
FAMILIES = ("netreceiver.pod.dns.", "netreceiver.pod.linklocal.", "netreceiver.pod.peer.")
Series = dict[tuple[str, tuple], int]


class NodePods:
    """This node's pod addresses as the pod watch would say; the cache test changes them."""

    def __init__(self) -> None:
        self.now: tuple[str, ...] = ()

    def addresses(self) -> tuple[str, ...]:
        return self.now


@pytest.fixture(scope="module")
def pods() -> Iterator[tuple[Pod, Pod]]:
    made: list[Pod] = []
    try:
        made = [create_pod(CLIENT), create_pod(SERVER, "systemd")]
        link_pods(made)
        yield made[0], made[1]
    finally:
        for pod in made:
            destroy_pod(pod)


@pytest.fixture(scope="module")
def server(pods: tuple[Pod, Pod]) -> Iterator[None]:
    import subprocess

    pod = pods[1]
    proc = subprocess.Popen(["ip", "netns", "exec", pod.netns, sys.executable,
                             str(SUPPORT / "dns_server.py"), pod.pod_ip],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_die_with_parent)
    _wait_for_line(proc, "ready", time.monotonic() + 20)
    yield
    proc.terminate()
    proc.communicate(timeout=5)


def _collector(probes: list[str], pods: tuple[Pod, Pod], zones: PeerZones) -> EbpfCollector:
    dns = DnsProbeConfig(cluster_dns=[pods[1].pod_ip], time_sync=[pods[1].host_ip])
    c = EbpfCollector(EbpfConfig(probes=probes, dns=dns), "/proc", NoPods(),
                      peer_table=zones.table)
    assert c.statuses() == dict.fromkeys(probes, ""), c.statuses()
    return c


def _zones(node_pods: NodePods) -> PeerZones:
    cfg = PeersConfig(subnets={f"10.251.{CLIENT}.0/24": "zone-a",
                               f"10.251.{SERVER}.0/24": "zone-b"},
                      describe_subnets=False, node_watch=False)
    return PeerZones(cfg, InstanceMetadata(availability_zone="zone-a"), "node-t", node_pods,
                     None)


def _series(collection: Collection, pods: tuple[Pod, Pod]) -> Series:
    """(metric, attributes) → value of the test pods' dns, link-local and peer series (a
    histogram by its count: two programs read the clock at different instants)."""
    uids = {pod.uid for pod in pods}
    out: Series = {}
    for point in collection.points:
        a = dict(point.attributes)
        if a.get("k8s.pod.uid") in uids and point.metric.name.startswith(FAMILIES):
            value = getattr(point.value, "count", point.value)
            out[(point.metric.name, tuple(sorted(a.items())))] = int(value)
    return out


def _delta(after: Series, before: Series) -> Series:
    moved = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in moved.items() if v}


def _traffic(pods: tuple[Pod, Pod]) -> None:
    client, server = pods
    client.exec(sys.executable, str(SUPPORT / "dns_client.py"), server.pod_ip, *QUERIES)
    send = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range(23): s.sendto(b'x' * 48, ('{server.host_ip}', 123))\n"
            f"for _ in range(17): s.sendto(b'y' * 100, ('{server.pod_ip}', 9))\n")
    client.exec(sys.executable, "-c", send)


def _moved(collectors: list[EbpfCollector], pods: tuple[Pod, Pod]) -> list[Series]:
    before = [_series(c.collect(), pods) for c in collectors]
    _traffic(pods)
    time.sleep(0.2)  # the ICMP errors and the last answers are in
    return [_delta(_series(c.collect(), pods), b) for c, b in zip(collectors, before,
                                                                   strict=True)]


def _families(series: Series) -> set[str]:
    return {name.rsplit(".", 1)[0] for name, _ in series}


def test_both_in_one_program_count_what_each_counts_alone(pods: tuple[Pod, Pod],
                                                        server: None) -> None:
    zones = _zones(NodePods())
    made = [_collector(p, pods, zones) for p in (["dns"], ["peers"], ["dns", "peers"])]
    try:
        assert sorted(made[2].objects()) == ["dns+peers"]
        [(_, bpf)] = made[2].objects().values()
        assert sorted(f.name for f in bpf.funcs.values()) == [
            b"dns_no_socket", b"dns_tcp_next", b"onr_sock_egress", b"onr_sock_ingress"]
        dns, peers, both = _moved(made, pods)
        assert _families(dns) == {"netreceiver.pod.dns", "netreceiver.pod.linklocal"}
        assert _families(peers) == {"netreceiver.pod.peer"}
        assert both == {**dns, **peers}
        client_sent = sum(v for (name, a), v in peers.items() if name.endswith("peer.packets")
                          and ("network.io.direction", "transmit") in a
                          and ("k8s.pod.uid", pods[0].uid) in a)
        assert client_sent >= 23 + 17 + len(QUERIES)
    finally:
        for c in made:
            c.close()


def test_a_refused_composite_falls_back_to_one_program_each(pods: tuple[Pod, Pod],
                                                            server: None,
                                                            monkeypatch) -> None:
    from otel_netreceiver.collectors import ebpf

    zones = _zones(NodePods())
    joined = _collector(["dns", "peers"], pods, zones)
    monkeypatch.setattr(ebpf, "render_hooks", lambda group, formats, offsets, hosted=None:
                        "#error composite refused by the test\n")
    alone = _collector(["dns", "peers"], pods, zones)
    try:
        assert sorted(joined.objects()) == ["dns+peers"]
        assert sorted(alone.objects()) == ["dns", "peers"]
        composite, separate = _moved([joined, alone], pods)
        assert composite == separate and _families(composite) == {
            "netreceiver.pod.dns", "netreceiver.pod.linklocal", "netreceiver.pod.peer"}
    finally:
        joined.close()
        alone.close()


def _cgroup_programs(*objects: Any) -> list[str]:
    """The programs the objects' cgroup links attach (each link's fdinfo names its program
    by id; each loaded function's fdinfo has its id)."""
    names: dict[str, str] = {}
    for bpf in objects:
        for fn in bpf.funcs.values():
            names[_fdinfo(fn.fd)["prog_id"]] = fn.name.decode()
    return sorted(names[_fdinfo(link)["prog_id"]] for bpf in objects
                  for link in getattr(bpf, "_links", ()))


def _fdinfo(fd: int) -> dict[str, str]:
    text = Path(f"/proc/self/fdinfo/{fd}").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _with_records(pods: tuple[Pod, Pod], zones: PeerZones,
                  events: list[Event]) -> tuple[EventHosting, EbpfCollector, EventSource]:
    """dns and peers with the DNS failure records, as the agent builds them (registry)."""
    dns = DnsProbeConfig(cluster_dns=[pods[1].pod_ip], time_sync=[pods[1].host_ip])
    ebpf = EbpfConfig(probes=["dns", "peers"], dns=dns)
    config = EventsConfig(types=DNS_TYPES)
    hosting = EventHosting(settings_of(config), ebpf.timing_sample)
    collector = EbpfCollector(ebpf, "/proc", NoPods(), peer_table=zones.table,
                              hosting=hosting)
    source = EventSource(config, ebpf, "/proc", NoPods(), events.append, hosting=hosting)
    source.start()
    return hosting, collector, source


def test_the_dns_records_join_the_composite_one_program_per_direction(
        pods: tuple[Pod, Pod], server: None) -> None:
    """With the DNS records on, dns+peers is still one egress and one ingress program (the
    records' handler inside dns's), and counts what it counts without them."""
    zones = _zones(NodePods())
    plain = _collector(["dns", "peers"], pods, zones)
    events: list[Event] = []
    hosting, collector, source = _with_records(pods, zones, events)
    try:
        [(name, (_, bpf))] = collector.objects().items()
        assert name == "dns+peers" and hosting.owns(bpf) and source._loaded["dns"] is bpf
        assert sorted(f.name for f in bpf.funcs.values()) == [
            b"dns_no_socket", b"dns_tcp_next", b"onr_sock_egress", b"onr_sock_ingress"]
        assert _cgroup_programs(bpf) == ["onr_sock_egress", "onr_sock_ingress"]
        without, with_records = _moved([plain, collector], pods)
        assert with_records == without and _families(without) == {
            "netreceiver.pod.dns", "netreceiver.pod.linklocal", "netreceiver.pod.peer"}
        # the records come from it: fail.test is answered SERVFAIL
        pods[0].exec(sys.executable, str(SUPPORT / "dns_client.py"), pods[1].pod_ip,
                     "fail.test/A/udp/2")
        deadline = time.monotonic() + 5
        while not any(e.name == "DNS_SERVFAIL" for e in events) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [e.attribute("dns.question.name") for e in events
                if e.name == "DNS_SERVFAIL"] == ["fail.test"]
    finally:
        plain.close()
        collector.close()
        source.close()
    assert not hosting.owns(bpf)  # the last holder unloaded it


def test_a_refused_hosted_composite_loads_without_the_records_and_they_alone(
        pods: tuple[Pod, Pod], server: None, monkeypatch) -> None:
    """The compiler refuses dns+peers with the records in it: dns+peers without them, and
    the records' own object (two more cgroup programs), counting the same."""
    from otel_netreceiver.collectors import ebpf

    real = ebpf.render_hooks
    monkeypatch.setattr(ebpf, "render_hooks", lambda group, formats, offsets, hosted=None:
                        "#error refused by the test\n" if hosted else
                        real(group, formats, offsets))
    zones = _zones(NodePods())
    plain = _collector(["dns", "peers"], pods, zones)
    events: list[Event] = []
    hosting, collector, source = _with_records(pods, zones, events)
    try:
        [(name, (_, bpf))] = collector.objects().items()
        assert name == "dns+peers" and not hosting.owns(bpf)
        assert source.statuses == {"dns": ""} and source._loaded["dns"] is not bpf
        assert _cgroup_programs(bpf, source._loaded["dns"]) == [
            "dnsev_egress", "dnsev_ingress", "onr_sock_egress", "onr_sock_ingress"]
        without, with_records = _moved([plain, collector], pods)
        assert with_records == without and without
    finally:
        plain.close()
        collector.close()
        source.close()


def _server_class(series: Series, server: Pod) -> dict[str, int]:
    """The client's packets to the server by peer class."""
    out: dict[str, int] = {}
    for (name, a), v in series.items():
        attrs = dict(a)
        if name.endswith("peer.packets") and attrs["k8s.pod.uid"] != server.uid \
                and attrs["network.io.direction"] == "transmit":
            out[attrs["peer.class"]] = out.get(attrs["peer.class"], 0) + v
    return out


def test_a_table_rewrite_reaches_the_next_packets_past_the_cache(pods: tuple[Pod, Pod]) -> None:
    """The per-CPU cache holds the server's class (other_zone) after a burst to it; the
    server's address becomes one of this node's pods: the next burst is same_node."""
    client, server = pods
    node_pods = NodePods()
    collector = _collector(["dns", "peers"], pods, _zones(node_pods))
    burst = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             f"for _ in range(29): s.sendto(b'z', ('{server.pod_ip}', 9))\n")
    try:
        before = _series(collector.collect(), pods)
        client.exec(sys.executable, "-c", burst)
        first = _series(collector.collect(), pods)
        assert _server_class(_delta(first, before), server) == {"other_zone": 29}
        node_pods.now = (server.pod_ip,)
        collector.collect()  # the reader rewrites the trie and bumps the generation
        client.exec(sys.executable, "-c", burst)
        second = _series(collector.collect(), pods)
        assert _server_class(_delta(second, first), server) == {"same_node": 29}
    finally:
        collector.close()
