"""The peers probe on this kernel: a pod sends known datagrams to peers of every class.

Five test pods (namespaces, veths, cgroups), all on this machine: the sender S and its
peers. The zone sources are the real ones (peers/sources.py) with configuration only:
``peers.subnets`` puts S's and P1's test subnets in zone-a (this node's zone, as IMDS would
say) and P2's in zone-b; P3's address is one of this node's pods (same_node); P4 holds an
"internet" address (198.51.100.7, TEST-NET-2) and a link-local one (169.254.77.1), reached
through a route in the node namespace (nothing leaves the machine), and its own pod address,
private but in no configured subnet, is other_vpc. S also talks to itself over loopback
(same_pod), and P2 echoes what it gets (S receives from other_zone).

Bytes are the IP packets' total length: payload + 8 (UDP) + 20 (IPv4). The per-class sums
of S equal what its namespace's own IP counters (nstat IpOutRequests, IpExtOutOctets,
IpInReceives, IpExtInOctets) moved by; the receivers' counts are what they received.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig, PeersConfig
from otel_netreceiver.events.otlp_logs import event_attributes
from otel_netreceiver.k8s.directory import NoPods, PodMeta
from otel_netreceiver.k8s.nodes import NodeInfo
from otel_netreceiver.model import Collection
from otel_netreceiver.peers.classes import PeerClass
from otel_netreceiver.peers.lpm import class_of
from otel_netreceiver.peers.records import PeerNames, PeerRecords
from otel_netreceiver.peers.sources import PeerZones
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.pods import Pod, create_pod, destroy_pod, nstat, run
from tests.support.sdk_node import link_pods
from tests.support.tools import stop_bpftrace

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
S, P1, P2, P3, P4 = 141, 142, 143, 144, 145
INTERNET, LINK_LOCAL = "198.51.100.7", "169.254.77.1"
PORT = 9000
IP_UDP = 28  # IPv4 header without options + UDP header
# the namespace cookie the programs key by (SO_NETNS_COOKIE 71, include/uapi/asm-generic/socket.h)
COOKIE = ("import socket; s = socket.socket(); "
          "print(int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 71, 8), 'little'))")


class ThisNodesPods:
    """What the pod watch says this node's pods' addresses are; the test changes it."""

    def __init__(self) -> None:
        self._addresses: tuple[str, ...] = ()

    def set(self, *addresses: str) -> None:
        self._addresses = addresses

    def addresses(self) -> tuple[str, ...]:
        return self._addresses


NODE_PODS = ThisNodesPods()


class PodWatch:
    """What the pod watch would answer for an address (the top-peer records' names)."""

    def __init__(self) -> None:
        self.pods: dict[str, PodMeta] = {}

    def by_ip(self, ip: str) -> PodMeta | None:
        return self.pods.get(ip)


POD_WATCH, NODES, SENT = PodWatch(), [], []
RECORDS = PeerRecords(lambda e: SENT.append(e) or True, 5, 1000,
                      PeerNames(POD_WATCH, lambda: tuple(NODES)))


# alone, and in one program with the other socket-hook probe (bpf/compose_hooks.py)
@pytest.fixture(scope="module", params=[["peers"], ["dns", "peers"]], ids=["alone", "composite"])
def probes(request: pytest.FixtureRequest) -> list[str]:
    return request.param


@pytest.fixture(scope="module")
def pods(probes: list[str]) -> Iterator[dict[int, Pod]]:
    """Made again for each set of probes: the churn test deletes one."""
    made: dict[int, Pod] = {}
    try:
        for index in (S, P1, P2, P3, P4):
            made[index] = create_pod(index, "systemd")
        link_pods(list(made.values()))
        far = made[P4]
        for address in (INTERNET, LINK_LOCAL):
            far.exec("ip", "addr", "add", f"{address}/32", "dev", "eth0")
            run("ip", "route", "add", f"{address}/32", "via", far.pod_ip, "dev", far.host_veth)
        yield made
    finally:
        for address in (INTERNET, LINK_LOCAL):
            run("ip", "route", "del", f"{address}/32", check=False)
        for pod in made.values():
            destroy_pod(pod)


@pytest.fixture(scope="module")
def collector(pods: dict[int, Pod], probes: list[str]) -> Iterator[EbpfCollector]:
    cfg = PeersConfig(subnets={"10.251.141.0/24": "zone-a", "10.251.142.0/24": "zone-a",
                               "10.251.143.0/24": "zone-b"},
                      describe_subnets=False, node_watch=False)
    zones = PeerZones(cfg, InstanceMetadata(availability_zone="zone-a"), "node-t",
                      NODE_PODS, None)
    NODE_PODS.set(pods[P3].pod_ip)
    c = EbpfCollector(EbpfConfig(probes=probes), "/proc", NoPods(), peer_table=zones.table,
                      peer_records=RECORDS)
    assert c.statuses() == dict.fromkeys(probes, ""), c.statuses()
    assert sorted(c.objects()) == ["+".join(probes)]
    yield c
    c.close()


def _by_class(collection: Collection, pod: Pod) -> dict[tuple[str, str, str], list[int]]:
    """(direction, class, zone) → [packets, bytes] of one pod."""
    out: dict[tuple[str, str, str], list[int]] = {}
    for point in collection.points:
        a = dict(point.attributes)
        if a.get("k8s.pod.uid") != pod.uid or not point.metric.name.startswith(
                "netreceiver.pod.peer."):
            continue
        key = (a["network.io.direction"], a["peer.class"], a.get("peer.zone", ""))
        slot = 0 if point.metric.name.endswith("packets") else 1
        out.setdefault(key, [0, 0])[slot] = int(point.value)
    return out


def _delta(after: dict, before: dict) -> dict:
    keys = set(after) | set(before)
    delta = {k: [a - b for a, b in zip(after.get(k, [0, 0]), before.get(k, [0, 0]),
                                       strict=True)] for k in keys}
    return {k: v for k, v in delta.items() if v != [0, 0]}


def _sink(pod: Pod, address: str, count: int, echo: bool = False) -> subprocess.Popen:
    argv = ["ip", "netns", "exec", pod.netns, sys.executable, str(SUPPORT / "udp_counts.py"),
            "sink", address, str(PORT), str(count)] + (["echo"] if echo else [])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_line(proc, "ready", time.monotonic() + 20)
    return proc


def test_bytes_and_packets_by_peer_class_and_zone(pods: dict[int, Pod],
                                                 collector: EbpfCollector) -> None:
    s, p1, p2, p3, p4 = (pods[i] for i in (S, P1, P2, P3, P4))
    # (sink pod, address, datagrams, payload bytes, echo) → the class S's sends are counted in
    plan = {("same_pod", ""): (s, "127.0.0.1", 5, 100, False),
            ("same_zone", "zone-a"): (p1, p1.pod_ip, 4, 200, False),
            ("other_zone", "zone-b"): (p2, p2.pod_ip, 3, 300, True),
            ("same_node", "zone-a"): (p3, p3.pod_ip, 2, 400, False),
            ("internet", ""): (p4, INTERNET, 6, 500, False),
            ("link_local", ""): (p4, LINK_LOCAL, 2, 50, False),
            ("other_vpc", ""): (p4, p4.pod_ip, 1, 250, False)}
    sinks = [_sink(pod, address, n, echo) for pod, address, n, _, echo in plan.values()]
    first = collector.collect()  # writes the peer table into the kernel
    before = {pod.uid: _by_class(first, pod) for pod in (s, p2, p4)}
    ip_before = nstat(s)
    out = s.exec(sys.executable, str(SUPPORT / "udp_counts.py"), "send",
                 *[f"{address}:{PORT}:{size}:{n}" for _, address, n, size, _ in plan.values()])
    received = [int(proc.communicate(timeout=20)[0].split()[-1]) for proc in sinks]
    assert received == [n for _, _, n, _, _ in plan.values()]
    assert int(out.stdout.split()[-1]) == 3  # P2's echoes
    ip_after = nstat(s)
    after = collector.collect()

    sent = {("transmit", cls, zone): [n, n * (size + IP_UDP)]
            for (cls, zone), (_, _, n, size, _) in plan.items()}
    got = {pod.uid: _delta(_by_class(after, pod), before[pod.uid]) for pod in (s, p2, p4)}
    assert got[s.uid] == {**sent, ("receive", "same_pod", ""): [5, 5 * 128],
                          ("receive", "other_zone", "zone-b"): [3, 3 * 328]}
    # the receivers class S's address: its subnet is in zone-a, this node's zone
    assert got[p2.uid] == {("receive", "same_zone", "zone-a"): [3, 3 * 328],
                           ("transmit", "same_zone", "zone-a"): [3, 3 * 328]}
    assert got[p4.uid] == {("receive", "same_zone", "zone-a"): [9, 6 * 528 + 2 * 78 + 278]}
    # S's own IP counters moved by what the probe counted, over all classes
    tx = [sum(v[i] for k, v in got[s.uid].items() if k[0] == "transmit") for i in (0, 1)]
    rx = [sum(v[i] for k, v in got[s.uid].items() if k[0] == "receive") for i in (0, 1)]
    moved = {k: ip_after[k] - ip_before.get(k, 0) for k in
             ("IpOutRequests", "IpExtOutOctets", "IpInReceives", "IpExtInOctets")}
    assert moved == {"IpOutRequests": tx[0], "IpExtOutOctets": tx[1],
                     "IpInReceives": rx[0], "IpExtInOctets": rx[1]}


def test_top_peers_name_the_peer_and_count_what_was_sent(pods: dict[int, Pod],
                                                         collector: EbpfCollector) -> None:
    """One interval of S's traffic: its five largest (peer, direction) rows as peer.top
    records, with the bytes and packets sent; P1 named by the pod watch, P2 by the Node watch
    (its address is a node's here), the rest by address; loopback is no peer."""
    s, p1, p2, p4 = (pods[i] for i in (S, P1, P2, P4))
    POD_WATCH.pods[p1.pod_ip] = PodMeta("u-p1", "p1", "shop", p1.pod_ip, ips=(p1.pod_ip,))
    NODES[:] = [NodeInfo("node-b", "zone-b", (p2.pod_ip,), ())]
    plan = [(s, "127.0.0.1", 5, 100, False), (p1, p1.pod_ip, 4, 700, False),
            (p2, p2.pod_ip, 3, 300, True), (p4, INTERNET, 6, 500, False),
            (p4, p4.pod_ip, 1, 250, False)]
    sinks = [_sink(pod, address, n, echo) for pod, address, n, _, echo in plan]
    veths = [pod.host_veth for pod in (s, p1, p2, p4)]
    trace = _dev_queue(veths)
    collector.collect()  # the interval starts here
    SENT.clear()
    s.exec(sys.executable, str(SUPPORT / "udp_counts.py"), "send",
           *[f"{address}:{PORT}:{size}:{n}" for _, address, n, size, _ in plan])
    assert [int(p.communicate(timeout=20)[0].split()[-1]) for p in sinks] == [5, 4, 3, 6, 1]
    collector.collect()
    queued = _dev_queue_counts(trace)
    mine = [dict(event_attributes(e)) for e in SENT if ("k8s.pod.uid", s.uid) in e.pod]
    got = [(r["peer.rank"], r["peer.name"], r["network.io.direction"], r["peer.class"],
            r.get("peer.zone", ""), r["peer.packets"], r["peer.bytes"]) for r in mine]
    assert got == [(1, INTERNET, "transmit", "internet", "", 6, 6 * 528),
                   (2, "shop/p1", "transmit", "same_zone", "zone-a", 4, 4 * 728),
                   (3, "node-b", "receive", "other_zone", "zone-b", 3, 3 * 328),
                   (4, "node-b", "transmit", "other_zone", "zone-b", 3, 3 * 328),
                   (5, p4.pod_ip, "transmit", "other_vpc", "", 1, 278)]
    assert {r["network.peer.address"] for r in mine if r["peer.name"] == "node-b"} == {
        p2.pod_ip}
    # bpftrace's own count of the frames queued on the host side of each peer's veth (and of
    # S's, for P2's echoes) by frame length (IP length + 14): the records' packets, per veth
    on_veth = {p1.pod_ip: p1.host_veth, p2.pod_ip: p2.host_veth, INTERNET: p4.host_veth,
               p4.pod_ip: p4.host_veth}
    expected: dict[tuple[str, int], int] = {}
    for r in mine:
        veth = on_veth[r["network.peer.address"]] if r["network.io.direction"] == "transmit" \
            else s.host_veth
        key = (veth, r["peer.bytes"] // r["peer.packets"] + 14)
        expected[key] = expected.get(key, 0) + r["peer.packets"]
    assert queued == expected
    # taken, not kept: the kernel's per-peer table holds no row of S's from the interval read
    cookie = int(s.exec(sys.executable, "-c", COOKIE).stdout)
    assert cookie not in {k.netns for k in collector._loaded["peers"][b"peer_top"]}


def _dev_queue(veths: list[str]) -> subprocess.Popen:
    """bpftrace counting net:net_dev_queue by device and length on ``veths`` (bpftrace cannot
    attach cgroup_skb: the device queue is the independent view), started and attached."""
    match = " || ".join(f'str(args->name) == "{v}"' for v in veths)
    program = (f"tracepoint:net:net_dev_queue /{match}/ "
               "{ @[str(args->name), args->len] = count(); }")
    proc = subprocess.Popen(["bpftrace", "-e", program], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_line(proc, "Attaching", time.monotonic() + 30)
    return proc


def _dev_queue_counts(proc: subprocess.Popen) -> dict[tuple[str, int], int]:
    """(device, frame length) → frames, ARP (42-byte frames) left out."""
    out = stop_bpftrace(proc, timeout=20)
    counts = {}
    for line in out.splitlines():
        found = re.match(r"@\[(\S+), (\d+)\]: (\d+)", line)
        if found and int(found.group(2)) != 42:
            counts[(found.group(1), int(found.group(2)))] = int(found.group(3))
    return counts


def _mapped(address: str) -> bytes:
    return ipaddress.IPv6Address(f"::ffff:{address}").packed


def test_churn_the_table_follows_the_pods_and_a_dead_pods_counts_are_gone(
        pods: dict[int, Pod], collector: EbpfCollector) -> None:
    """P3 leaves this node's pods: its address is other_vpc in the kernel at the next cycle.
    P1 (which counted traffic above) is deleted: its rows leave the kernel map and its
    series the output; the table does not grow with churn."""
    peers = collector._loaded["peers"]
    p1, p3 = pods[P1], pods[P3]
    assert peers.state.map.lookup(_mapped(p3.pod_ip)) == (int(PeerClass.SAME_NODE), 1)
    entries = peers.state.map.stats.entries
    assert any(p.metric.name.startswith("netreceiver.pod.peer.")
               and ("k8s.pod.uid", p1.uid) in p.attributes for p in collector.collect().points)
    cookie = int(p1.exec(sys.executable, "-c", COOKIE).stdout)
    assert cookie in {k.netns for k in peers[b"peer_counts"]}
    NODE_PODS.set()
    destroy_pod(p1)
    collection = collector.collect()
    collection = collector.collect()  # the walk that sees P1 gone may be the next one
    assert class_of(peers.state.map.lookup(_mapped(p3.pod_ip))) is PeerClass.OTHER_VPC
    assert peers.state.map.stats.entries == entries - 1
    assert not any(("k8s.pod.uid", p1.uid) in p.attributes for p in collection.points)
    assert cookie not in {k.netns for k in peers[b"peer_counts"]}
