"""Link-local packets per pod and per egress interface, and the per-second peak, on this kernel.

The machine's root namespace acts as the node. Two "ENIs" are veth pairs from it into two
test namespaces (vpc A, vpc B); each holds the addresses this test configures as the Amazon
resolver and IMDS, with tests/support/dns_server.py answering DNS there, so no packet
leaves the namespaces the test made. Pod A routes by the node's main table (out of ENI A);
pod B has a policy rule ``from <pod B> lookup <table>`` that sends it out of ENI B, as the
VPC CNI does for a pod on a secondary ENI. A process in the root namespace inside a
kubepods cgroup plays a hostNetwork pod. NodeLocal DNSCache and the Pod Identity agent are
addresses of an interface of the node: answered on the node.

Checked: per-pod counts by service, interface and answered_by; per-interface totals equal
what the DNS servers in the vpc namespaces logged; the per-second peak equals a burst sent
within one second; node-answered packets stay out of the interface figures.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import DnsProbeConfig, EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from tests.integration.test_ebpf_probes import REASON, _wait_for_line
from tests.support.pods import V2, Pod, _die_with_parent, create_pod, destroy_pod, run
from tests.support.sdk_node import link_pods

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SUPPORT = Path(__file__).resolve().parents[1] / "support"
TAG = os.getpid() % 1000
RESOLVER, IMDS = "10.252.0.253", "10.252.0.254"  # configured as amazon_dns and imds
NODE_LOCAL, POD_IDENTITY = "10.252.3.10", "10.252.3.23"  # on an interface of the node
TABLE = str(2000 + TAG)
BURST_A, BURST_B = 1500, 700  # > 1024: what the allowance would drop

# queries for drop.test, which the servers never answer (an answer to a socket gone would
# bring ICMP errors back through the ENI); an aligned burst starts just after a second of
# CLOCK_MONOTONIC (bpf_ktime_get_ns's clock) begins and prints whether it stayed in it
SENDER = """
import socket, sys, time
host, port, count, aligned = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
query = bytes.fromhex('abcd010000010000000000000464726f7004746573740000010001')  # drop.test
if aligned == '1':
    time.sleep(1.02 - (time.monotonic_ns() % 1_000_000_000) / 1e9)
first = time.monotonic_ns() // 1_000_000_000
for _ in range(count):
    s.sendto(query, (host, port))
print(first == time.monotonic_ns() // 1_000_000_000, flush=True)
"""


@dataclass
class Eni:
    name: str  # the node side
    vpc: str  # the namespace at the other end
    node_ip: str
    vpc_ip: str


def _eni(letter: str, index: int) -> Eni:
    eni = Eni(f"onre{TAG}{letter}", f"onrvpc{TAG}{letter}", f"10.252.{index}.1",
              f"10.252.{index}.2")
    run("ip", "netns", "add", eni.vpc)
    run("ip", "link", "add", eni.name, "type", "veth", "peer", "name", "eth0", "netns", eni.vpc)
    run("sysctl", "-qw", f"net.ipv6.conf.{eni.name}.disable_ipv6=1")
    run("ip", "addr", "add", f"{eni.node_ip}/30", "dev", eni.name)
    run("ip", "link", "set", eni.name, "up")
    run("sysctl", "-qw", f"net.ipv4.conf.{eni.name}.forwarding=1")
    for argv in (("sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"),
                 ("ip", "addr", "add", f"{eni.vpc_ip}/30", "dev", "eth0"),
                 ("ip", "addr", "add", f"{RESOLVER}/32", "dev", "lo"),
                 ("ip", "addr", "add", f"{IMDS}/32", "dev", "lo"),
                 ("ip", "link", "set", "eth0", "up"), ("ip", "link", "set", "lo", "up"),
                 ("ip", "route", "add", "10.251.0.0/16", "via", eni.node_ip)):
        run("ip", "netns", "exec", eni.vpc, *argv)
    return eni


@dataclass
class Node:
    pod_a: Pod
    pod_b: Pod
    eni_a: Eni
    eni_b: Eni
    host_uid: str
    host_cgroup: Path


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    made: list[Pod] = []
    enis: list[Eni] = []
    host_uid = str(uuid.uuid4())
    cgroup = (V2 / "kubepods.slice" / "kubepods-besteffort.slice"
              / f"kubepods-besteffort-pod{host_uid.replace('-', '_')}.slice"
              / f"cri-containerd-{uuid.uuid4().hex * 2}.scope")
    dummy = f"onrnl{TAG}"
    try:
        made = [create_pod(71), create_pod(72)]
        link_pods(made)
        enis = [_eni("a", 1), _eni("b", 2)]
        run("ip", "route", "add", "10.252.0.0/24", "via", enis[0].vpc_ip)
        run("ip", "route", "add", "10.252.2.0/30", "dev", enis[1].name, "table", TABLE)
        run("ip", "route", "add", "10.252.0.0/24", "via", enis[1].vpc_ip, "table", TABLE)
        run("ip", "rule", "add", "from", made[1].pod_ip, "lookup", TABLE, "priority", "1536")
        # no dummy driver on every kernel: a veth pair's node end holds the addresses
        run("ip", "link", "add", dummy, "type", "veth", "peer", "name", f"{dummy}p")
        run("ip", "addr", "add", f"{NODE_LOCAL}/32", "dev", dummy)
        run("ip", "addr", "add", f"{POD_IDENTITY}/32", "dev", dummy)
        run("ip", "link", "set", dummy, "up")
        cgroup.mkdir(parents=True, exist_ok=True)
        yield Node(made[0], made[1], enis[0], enis[1], host_uid, cgroup)
    finally:
        run("ip", "rule", "del", "from", made[1].pod_ip if len(made) > 1 else "0.0.0.0",
            "lookup", TABLE, check=False)
        run("ip", "route", "flush", "table", TABLE, check=False)
        run("ip", "route", "del", "10.252.0.0/24", check=False)
        run("ip", "link", "del", dummy, check=False)
        for eni in enis:
            run("ip", "link", "del", eni.name, check=False)
            run("ip", "netns", "del", eni.vpc, check=False)
        for pod in made:
            destroy_pod(pod)
        for directory in (cgroup, cgroup.parent):
            if directory.exists():
                directory.rmdir()


@pytest.fixture(scope="module")
def collector(node: Node) -> Iterator[EbpfCollector]:
    dns = DnsProbeConfig(amazon_dns=[RESOLVER], imds=[IMDS], time_sync=[],
                         node_local_dns=[NODE_LOCAL], pod_identity=[POD_IDENTITY],
                         cgroup_root=str(V2.parent), peak_window=0)
    c = EbpfCollector(EbpfConfig(probes=["dns"], dns=dns), "/proc", NoPods())
    assert c.statuses() == {"dns": ""}, c.statuses()
    c.collect()  # resolves the pods' routes into the kernel before they send
    yield c
    c.close()


def _servers(node: Node) -> list[subprocess.Popen]:
    procs = []
    for eni in (node.eni_a, node.eni_b):
        proc = subprocess.Popen(["ip", "netns", "exec", eni.vpc, sys.executable,
                                 str(SUPPORT / "dns_server.py"), RESOLVER],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_die_with_parent)
        _wait_for_line(proc, "ready", time.monotonic() + 20)
        procs.append(proc)
    return procs


def _stop(procs: list[subprocess.Popen]) -> list[dict[str, int]]:
    """Each server's own log of the queries it took (a burst may overflow its socket)."""
    logs = []
    for proc in procs:
        proc.terminate()
        logs.append(json.loads(proc.communicate(timeout=5)[1].strip().splitlines()[-1]))
    return logs


def _arrived(eni: Eni) -> int:
    """IP packets the vpc namespace received (its own counter: the independent check)."""
    out = run("ip", "netns", "exec", eni.vpc, "nstat", "-asz", "IpInReceives").stdout
    return int(next(line.split()[1] for line in out.splitlines()
                    if line.startswith("IpInReceives")))


def _send(pod: Pod | None, host: str, port: int, count: int, aligned: bool = False,
          cgroup: Path | None = None) -> None:
    """Send ``count`` datagrams from a pod (or the node, in ``cgroup``); an aligned burst is
    sent again if it was split over two seconds (never seen on an idle machine)."""
    argv = [sys.executable, "-c", SENDER, host, str(port), str(count), "1" if aligned else "0"]
    if cgroup is not None:  # join the cgroup before the socket is made: sockets keep it
        argv = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *argv]
    out = pod.exec(*argv).stdout if pod else run(*argv).stdout
    assert out.strip() == "True", f"the burst crossed a second boundary: {out!r}"


def _points(collection: Collection, name: str) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for p in collection.points:
        if p.metric.name == name:
            key = tuple(sorted((k, v) for k, v in p.attributes if k in (
                "k8s.pod.uid", "linklocal.service", "linklocal.answered_by",
                "network.interface.name")))
            out[key] = out.get(key, 0) + int(p.value)  # type: ignore[call-overload]
    return out


def _moved(before: Collection, after: Collection, name: str) -> dict[tuple, int]:
    old = _points(before, name)
    return {k: v - old.get(k, 0) for k, v in _points(after, name).items() if v != old.get(k, 0)}


def _pod(pod_uid: str, service: str, eni: str | None) -> tuple:
    return tuple(sorted((("k8s.pod.uid", pod_uid), ("linklocal.service", service),
                         ("linklocal.answered_by", "eni" if eni else "node"),
                         *((("network.interface.name", eni),) if eni else ()))))


def _iface(eni: str, service: str) -> tuple:
    return (("linklocal.service", service), ("network.interface.name", eni))


def _peaks(collection: Collection, node: Node) -> dict[str, int]:
    got = _points(collection, "netreceiver.linklocal.peak_packets_per_second")
    return {dict(k)["network.interface.name"]: v for k, v in got.items()
            if dict(k)["network.interface.name"] in (node.eni_a.name, node.eni_b.name)}


def test_per_pod_per_interface_and_the_one_second_peak(node: Node,
                                                       collector: EbpfCollector) -> None:
    a, b = node.eni_a.name, node.eni_b.name
    servers = _servers(node)
    try:
        time.sleep(1.1)  # earlier seconds end: the next collection takes them
        before, arrived = collector.collect(), [_arrived(node.eni_a), _arrived(node.eni_b)]
        _send(node.pod_a, RESOLVER, 53, BURST_A, aligned=True)
        _send(node.pod_b, IMDS, 80, 40, aligned=True)
        _send(node.pod_b, RESOLVER, 53, BURST_B, aligned=True)
        time.sleep(1.1)  # the last burst's second ends
        after = collector.collect()
        arrived = [_arrived(node.eni_a) - arrived[0], _arrived(node.eni_b) - arrived[1]]
    finally:
        logs = _stop(servers)
    assert arrived == [BURST_A, BURST_B + 40]  # the ENIs passed all (nothing else went there)
    assert 0 < logs[0]["drop/udp"] <= BURST_A and 0 < logs[1]["drop/udp"] <= BURST_B, logs
    assert _moved(before, after, "netreceiver.pod.linklocal.packets") == {
        _pod(node.pod_a.uid, "amazon_dns", a): BURST_A,
        _pod(node.pod_b.uid, "amazon_dns", b): BURST_B,  # its policy rule: out of ENI B
        _pod(node.pod_b.uid, "imds", b): 40}
    assert _moved(before, after, "netreceiver.linklocal.packets") == {
        _iface(a, "amazon_dns"): BURST_A, _iface(b, "amazon_dns"): BURST_B,
        _iface(b, "imds"): 40}
    assert _peaks(after, node) == {a: BURST_A, b: BURST_B}
    time.sleep(1.1)
    assert _peaks(collector.collect(), node) == {a: 0, b: 0}  # reset by the read


def test_node_answered_services_and_a_hostnetwork_pod(node: Node,
                                                      collector: EbpfCollector) -> None:
    a = node.eni_a.name
    # the node's listeners (a closed port would answer the node's own datagrams with ICMP
    # errors from and to the node-local address: packets to it as well)
    sinks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        sinks[0].bind((NODE_LOCAL, 53))
        sinks[1].bind((POD_IDENTITY, 80))
        before = collector.collect()
        _send(node.pod_a, NODE_LOCAL, 53, 25)
        _send(node.pod_a, POD_IDENTITY, 80, 15)
        _send(None, RESOLVER, 53, 30, cgroup=node.host_cgroup)  # a hostNetwork pod: ENI A
        _send(None, NODE_LOCAL, 53, 12, cgroup=node.host_cgroup)
        after = collector.collect()
    finally:
        for sink in sinks:
            sink.close()
    assert _moved(before, after, "netreceiver.pod.linklocal.packets") == {
        _pod(node.pod_a.uid, "node_local_dns", None): 25,
        _pod(node.pod_a.uid, "pod_identity", None): 15,
        _pod(node.host_uid, "amazon_dns", a): 30,
        _pod(node.host_uid, "node_local_dns", None): 12}
    # what the node answers never counts against the ENI
    assert _moved(before, after, "netreceiver.linklocal.packets") == {
        _iface(a, "amazon_dns"): 30}
    node.host_cgroup.rmdir()  # the hostNetwork pod is deleted: its series end
    later = _points(collector.collect(), "netreceiver.pod.linklocal.packets")
    assert not [k for k in later if ("k8s.pod.uid", node.host_uid) in k]
