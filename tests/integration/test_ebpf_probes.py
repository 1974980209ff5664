"""bcc probes on this kernel, with real events made in test pods and independent cross-checks.

Drops per pod are compared with a bpftrace count of the same tracepoint filtered to
the same namespace (bpftrace reads struct layouts from BTF on its own), resets and
retransmissions with the namespace's own SNMP counters.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from tests.support.pods import Pod, destroy_pod, kernel_supports_test_pods, nstat, pod_pair
from tests.support.tools import require_tool, stop_bpftrace

pytestmark = pytest.mark.root

ALL = ["packetloss", "tcpreset", "tcpretrans", "net_softirq", "netiftxlat"]


def _kernel_reason() -> str:
    reason = kernel_supports_test_pods()
    if reason:
        return reason
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "this kernel has no BTF (/sys/kernel/btf/vmlinux)"
    return ""


REASON = _kernel_reason()
if REASON:
    pytest.skip(REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def collector():
    c = EbpfCollector(EbpfConfig(probes=ALL, timing_sample=1), "/proc", NoPods())  # time all
    assert c.statuses() == dict.fromkeys(ALL, ""), c.statuses()  # all load on this kernel
    yield c
    c.close()


@pytest.fixture
def pods():
    with pod_pair(7) as made:
        yield made


def _sum(collection: Collection, name: str, pod: Pod, **extra: str) -> float:
    total = 0
    for point in collection.points:
        a = dict(point.attributes)
        if (point.metric.name == name and a.get("k8s.pod.uid") == pod.uid
                and all(a.get(k) == v for k, v in extra.items())):
            total += point.value  # type: ignore[operator]
    return total


def _inode(pod: Pod) -> int:
    assert pod.holder is not None
    return int(os.readlink(f"/proc/{pod.holder.pid}/ns/net")[5:-1])


def _wait_for_line(proc: subprocess.Popen, wanted: str, deadline: float) -> None:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if wanted in line:
            return
    proc.kill()
    raise AssertionError(f"bpftrace never printed {wanted!r}")


def _bpftrace_drops(inode: int, workload) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """Run ``workload`` while bpftrace counts kfree_skb reasons in one namespace."""
    script = ("tracepoint:skb:kfree_skb /((struct sk_buff *)args->skbaddr)->dev->nd_net.net"
              f"->ns.inum == {inode}/ {{ @[args->reason] = count(); }}"
              " BEGIN { printf(\"ready\\n\"); }")
    # -B line: bpftrace block-buffers a pipe otherwise, and "ready" would never arrive
    proc = subprocess.Popen([require_tool("bpftrace"), "-B", "line", "-e", script],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_for_line(proc, "ready", deadline=time.monotonic() + 60)
        workload()
        time.sleep(0.3)
    finally:
        out = stop_bpftrace(proc)
    counts = {}
    for line in out.splitlines():
        if line.startswith("@["):
            key, _, value = line.partition(": ")
            counts[int(key[2:-1])] = int(value)
    return counts


def _udp_to_closed_port(pod: Pod, n: int) -> None:
    pod.exec("python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             f"for _ in range({n}): s.sendto(b'x', ('127.0.0.1', 9))")


def test_drops_per_pod_by_reason_agree_with_bpftrace(collector, pods) -> None:
    a, b = pods
    before = collector.collect()
    bpftrace = _bpftrace_drops(_inode(a), lambda: _udp_to_closed_port(a, 25))
    after = collector.collect()
    ours = (_sum(after, "netreceiver.pod.packet.drops", a, **{"drop.reason": "NO_SOCKET"})
            - _sum(before, "netreceiver.pod.packet.drops", a, **{"drop.reason": "NO_SOCKET"}))
    assert ours == 25
    assert bpftrace.get(3) == 25  # 3 = SKB_DROP_REASON_NO_SOCKET on this kernel
    assert _sum(after, "netreceiver.pod.packet.drops", b) == _sum(
        before, "netreceiver.pod.packet.drops", b)  # the other pod saw none
    sites = {dict(p.attributes)["drop.location"] for p in after.points
             if p.metric.name == "netreceiver.packet.drop_sites"}
    assert "__udp4_lib_rcv" in sites  # the location seed 002's DNS playbook names


def test_resets_sent_and_received_agree_with_the_namespaces_snmp(collector, pods) -> None:
    _, b = pods
    before, snmp_before = collector.collect(), nstat(b)
    b.exec("python3", "-c", "import socket\nfor _ in range(5):\n    s = socket.socket()\n"
           "    try: s.connect(('127.0.0.1', 1))\n    except ConnectionRefusedError: pass")
    after, snmp_after = collector.collect(), nstat(b)
    sent = {"tcp.reset.direction": "sent", "tcp.state": "no_socket"}
    received = {"tcp.reset.direction": "received", "tcp.state": "syn_sent"}
    sent_delta = (_sum(after, "netreceiver.pod.tcp.resets", b, **sent)
                  - _sum(before, "netreceiver.pod.tcp.resets", b, **sent))
    assert sent_delta == snmp_after["TcpOutRsts"] - snmp_before["TcpOutRsts"] == 5
    assert (_sum(after, "netreceiver.pod.tcp.resets", b, **received)
            - _sum(before, "netreceiver.pod.tcp.resets", b, **received)) == 5
    reasons = {dict(p.attributes)["tcp.reset.reason"] for p in after.points
               if p.metric.name == "netreceiver.pod.tcp.resets"
               and dict(p.attributes).get("k8s.pod.uid") == b.uid
               and dict(p.attributes)["tcp.reset.direction"] == "sent"}
    assert reasons == {"no_socket"}  # enum sk_rst_reason, named from the format file


def test_retransmissions_forced_by_nftables_agree_with_snmp(collector, pods) -> None:
    a, _ = pods
    require_tool("nft")
    a.exec("nft", "add table inet onrtest")
    a.exec("nft", "add chain inet onrtest out { type filter hook output priority 0 ; }")
    a.exec("nft", "add rule inet onrtest out tcp dport 7777 drop")
    before, snmp_before = collector.collect(), nstat(a)
    a.exec("python3", "-c", "import socket\ns = socket.socket(); s.settimeout(3.5)\n"
           f"try: s.connect(('{a.host_ip}', 7777))\nexcept OSError: pass", check=False)
    after, snmp_after = collector.collect(), nstat(a)
    retrans = (_sum(after, "netreceiver.pod.tcp.retransmits", a, **{"tcp.state": "syn_sent"})
               - _sum(before, "netreceiver.pod.tcp.retransmits", a, **{"tcp.state": "syn_sent"}))
    assert retrans >= 1  # SYN resent at 1 s and 3 s
    # SYNs only: another flow of the pod may retransmit data meanwhile (RetransSegs)
    assert retrans == (snmp_after.get("TcpExtTCPSynRetrans", 0)
                       - snmp_before.get("TcpExtTCPSynRetrans", 0))


def test_latency_histograms_fill_with_traffic(collector, pods) -> None:
    a, _ = pods
    _udp_to_closed_port(a, 50)
    collection = collector.collect()
    hist = {(dict(p.attributes).get("softirq.vector"), dict(p.attributes).get("softirq.phase"),
             dict(p.attributes).get("network.interface.name")): p.value
            for p in collection.points if p.metric.kind.value == "histogram"}
    rx = hist[("NET_RX", "execute", None)]
    assert rx.count > 0 and rx.sum > 0 and sum(rx.bucket_counts) == rx.count
    assert hist[("NET_RX", "schedule", None)].count > 0
    assert hist[(None, None, "lo")].count > 0  # the pod's loopback transmit path


def _lo_transmits(collection: Collection) -> int:
    """The histogram count of interface lo (every namespace's lo: the key is the name)."""
    return next((p.value.count for p in collection.points
                 if dict(p.attributes).get("network.interface.name") == "lo"), 0)


def test_one_transmit_in_n_is_timed_and_the_counts_are_scaled(pods) -> None:
    """timing_sample 8 against 1, loaded together so both see the same transmits (the pod's
    flood and whatever else the node sends on lo): about one in 8 is timed and stands for 8,
    so the scaled count is a multiple of 8 near the exact one. A program timing every packet
    would count 8x too many, a broken choice none."""
    a, _ = pods
    probes = ["netiftxlat", "net_softirq"]
    exact = EbpfCollector(EbpfConfig(probes=probes, timing_sample=1), "/proc", NoPods())
    sampled = EbpfCollector(EbpfConfig(probes=probes, timing_sample=8), "/proc", NoPods())
    try:
        before = (_lo_transmits(exact.collect()), _lo_transmits(sampled.collect()))
        _udp_to_closed_port(a, 20000)  # ~40000 transmits: ~5000 timed, 8 sigma is 20 %
        collection = sampled.collect()
        after = (_lo_transmits(exact.collect()), _lo_transmits(collection))
    finally:
        sampled.close()
        exact.close()
    total, estimate = after[0] - before[0], after[1] - before[1]
    assert estimate % 8 == 0 and total >= 40000
    assert total / 2 < estimate < total * 2
    rx = next(p.value for p in collection.points
              if dict(p.attributes).get("softirq.vector") == "NET_RX"
              and dict(p.attributes).get("softirq.phase") == "execute")
    assert rx.count % 8 == 0 and rx.count > 0


def test_dead_namespaces_leave_the_maps(collector, pods) -> None:
    b = pods[1]
    _udp_to_closed_port(b, 3)
    assert _sum(collector.collect(), "netreceiver.pod.packet.drops", b) >= 3
    inode = _inode(b)
    destroy_pod(b)
    b.holder = None
    time.sleep(0.2)
    # The kernel tears a namespace down asynchronously (cleanup_net) and may still free its
    # skbs after a cycle deleted its map entries; what must hold is that no series of it
    # is exported, cycle after cycle (the deletion itself: tests/unit/test_bpf_pure.py).
    for _ in range(2):
        after = collector.collect()
        assert not any(dict(p.attributes).get("netns.inode") == str(inode)
                       for p in after.points)
        time.sleep(0.2)


def test_without_bcc_or_btf_probes_are_unavailable_with_reasons() -> None:
    without_bcc = EbpfCollector(EbpfConfig(probes=ALL, use_bcc=False), "/proc", NoPods())
    assert not without_bcc.probe().active
    assert all("bcc disabled" in r for r in without_bcc.statuses().values())
    assert without_bcc.collect().points == ()
    no_btf = EbpfCollector(EbpfConfig(probes=ALL, btf_path="/nonexistent/vmlinux"), "/proc",
                           NoPods())
    try:
        statuses = no_btf.statuses()
        assert statuses["net_softirq"] == "" and statuses["netiftxlat"] == ""  # need no BTF
        assert all("no BTF" in statuses[p] for p in ("packetloss", "tcpreset", "tcpretrans"))
    finally:
        no_btf.close()


def test_retransmissions_per_peer_are_capped_and_the_rest_counted(pods) -> None:
    """retrans_peers: 1 tracks one remote endpoint; a second one is counted as lost."""
    a, _ = pods
    require_tool("nft")
    capped = EbpfCollector(EbpfConfig(probes=["tcpretrans"], retrans_peers=1), "/proc", NoPods())
    try:
        assert capped.statuses() == {"tcpretrans": ""}
        a.exec("nft", "add table inet onrpeer")
        a.exec("nft", "add chain inet onrpeer out { type filter hook output priority 0 ; }")
        a.exec("nft", "add rule inet onrpeer out tcp dport { 7778, 7779 } drop")
        connect = ("import socket, sys\ns = socket.socket(); s.settimeout(1.5)\n"
                   "try: s.connect((sys.argv[1], int(sys.argv[2])))\nexcept OSError: pass")
        a.exec("python3", "-c", connect, a.host_ip, "7778", check=False)
        deadline = time.monotonic() + 5  # a loaded machine may run the SYN timer late
        while True:
            first = capped.collect()
            peers = [dict(p.attributes) | {"value": p.value} for p in first.points
                     if p.metric.name == "netreceiver.pod.tcp.retransmits.by_peer"
                     and dict(p.attributes).get("k8s.pod.uid") == a.uid]
            if peers or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [(p["network.peer.address"], p["network.peer.port"]) for p in peers] == [
            (a.host_ip, "7778")]
        total = _sum(first, "netreceiver.pod.tcp.retransmits", a, **{"tcp.state": "syn_sent"})
        assert peers[0]["value"] == total >= 1
        lost_before = _lost(first)
        a.exec("python3", "-c", connect, a.host_ip, "7779", check=False)
        second = capped.collect()
        assert _lost(second) > lost_before  # the second endpoint did not fit: counted
        assert not [p for p in second.points
                    if dict(p.attributes).get("network.peer.port") == "7779"]
    finally:
        capped.close()


def _lost(collection: Collection) -> float:
    return sum(p.value for p in collection.points if p.metric.name == "netreceiver.bpf.lost")
