"""The packetloss last-key slot on this kernel: exported drop counts stay exact.

counting.c keeps each CPU's last (location, namespace, reason) key and its pending count
outside the hash (packetloss/slots.py says how the reader adds them). Senders in two test
pods drop datagrams with alternating keys (IPv4 and IPv6 to closed ports: two drop sites;
two namespaces) and with one repeated key, while the collector reads many times: no series
may ever go down, and once the senders stop every total must equal what was sent, as the
namespace's own counters (UdpNoPorts, Udp6NoPorts) also say. A slot holding a deleted
namespace's key must not bring its series back.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from tests.support.pods import Pod, destroy_pod, kernel_supports_test_pods, nstat, pod_pair

pytestmark = pytest.mark.root

REASON = kernel_supports_test_pods() or (
    "" if Path("/sys/kernel/btf/vmlinux").exists() else "this kernel has no BTF")
if REASON:
    pytest.skip(REASON, allow_module_level=True)

DROPS = "netreceiver.pod.packet.drops"
# one batch: a run of one key, keys alternating on every datagram, a run of the other key
SENDER = """
import os, socket, sys
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sent, pattern = 0, sys.argv[2]
while not os.path.exists(sys.argv[1]) or sent == 0:
    for _ in range(100):
        if pattern == "mixed":
            for _ in range(30): v4.sendto(b"x", ("127.0.0.1", 9))
            for _ in range(10): v4.sendto(b"x", ("127.0.0.1", 9)); v6.sendto(b"x", ("::1", 9))
            for _ in range(20): v6.sendto(b"x", ("::1", 9))
            sent += 70
        else:
            v4.sendto(b"x", ("127.0.0.1", 9)); sent += 1
print(sent)
"""


@pytest.fixture(scope="module")
def collector():
    c = EbpfCollector(EbpfConfig(probes=["packetloss"]), "/proc", NoPods())
    assert c.statuses() == {"packetloss": ""}, c.statuses()
    yield c
    c.close()


@pytest.fixture
def pods():
    with pod_pair(11) as made:
        yield made


def _no_socket(collection: Collection, pod: Pod) -> int:
    return sum(int(p.value) for p in collection.points  # type: ignore[arg-type]
               if p.metric.name == DROPS and dict(p.attributes).get("k8s.pod.uid") == pod.uid
               and dict(p.attributes).get("drop.reason") == "NO_SOCKET")


def _series(collection: Collection) -> dict[tuple, int]:
    return {(p.metric.name, p.attributes): int(p.value)  # type: ignore[arg-type]
            for p in collection.points if p.metric.name.endswith(("drops", "drop_sites"))}


def _no_ports(pod: Pod) -> int:
    counters = nstat(pod)
    return counters.get("UdpNoPorts", 0) + counters.get("Udp6NoPorts", 0)


def test_totals_are_exact_and_never_go_down_with_alternating_keys(collector, pods) -> None:
    a, b = pods
    before = {pod.uid: (_no_socket(collector.collect(), pod), _no_ports(pod)) for pod in pods}
    stop = Path(tempfile.mkdtemp()) / "stop"
    senders = [subprocess.Popen(["ip", "netns", "exec", pod.netns, "python3", "-c", SENDER,
                                 str(stop), pattern], stdout=subprocess.PIPE, text=True)
               for pod, pattern in ((a, "mixed"), (b, "one"))]
    seen: dict[tuple, int] = {}
    moved = {pod.uid: 0 for pod in pods}  # reads in which the pod's count had grown
    last = {pod.uid: before[pod.uid][0] for pod in pods}
    try:
        for _ in range(3000):  # reads while both senders run (they stop only when told)
            collection = collector.collect()
            for series, value in _series(collection).items():
                assert value >= seen.get(series, 0), f"{series} went down"
                seen[series] = value
            for pod in pods:
                count = _no_socket(collection, pod)
                moved[pod.uid] += count > last[pod.uid]
                last[pod.uid] = count
            if min(moved.values()) >= 100:
                break
    finally:
        stop.touch()
        sent = [int(s.communicate(timeout=30)[0]) for s in senders]
        os.unlink(stop)
    assert min(moved.values()) >= 100, moved  # read often while both pods were dropping
    after = collector.collect()
    print(f"sent {sent}, reads with growth {moved}")
    for pod, count in zip(pods, sent, strict=True):
        ours = _no_socket(after, pod) - before[pod.uid][0]
        kernel = _no_ports(pod) - before[pod.uid][1]
        assert (ours, kernel) == (count, count), pod.netns
    for series, value in _series(after).items():
        assert value >= seen.get(series, 0), f"{series} went down"


def _cpu0_slot(collector: EbpfCollector):  # type: ignore[no-untyped-def]
    [(_, bpf)] = collector.objects().values()
    table = bpf[b"drop_last"]
    return bpf, table[table.Key(0)][0]


def _elsewhere(collection: Collection, pod: Pod) -> int:
    """NO_SOCKET drops exported outside ``pod`` (a resurrected dead key would be here, as
    netns.kind=unknown: its namespace is in no walk)."""
    return sum(int(p.value) for p in collection.points  # type: ignore[arg-type]
               if p.metric.name == DROPS and dict(p.attributes).get("k8s.pod.uid") != pod.uid
               and dict(p.attributes).get("drop.reason") == "NO_SOCKET")


def test_a_slot_holding_a_dead_namespace_does_not_bring_it_back(collector, pods) -> None:
    a, b = pods
    sender = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "for _ in range(5): s.sendto(b'x', ('127.0.0.1', 9))")
    for _ in range(3):  # its key stays in CPU 0's slot unless another drop lands there
        b.exec("taskset", "-c", "0", "python3", "-c", sender)
        _, slot = _cpu0_slot(collector)
        if slot.pending >= 5 and slot.key.netns:
            break
    assert slot.pending >= 5, "CPU 0's slot does not hold the sender's drops"
    dead = slot.key.netns
    first = collector.collect()
    assert _no_socket(first, b) >= 5
    outside = _elsewhere(first, a)
    destroy_pod(b)
    b.holder = None
    time.sleep(0.2)
    for flush in (False, False, True, False, False):
        if flush:  # a drop of another key on CPU 0 moves the dead key's count to the hash
            a.exec("taskset", "-c", "0", "python3", "-c", sender)
        collection = collector.collect()
        assert not any(dict(p.attributes).get("k8s.pod.uid") == b.uid
                       for p in collection.points)
        assert _elsewhere(collection, a) <= outside - 5  # its series ended, none came back
    bpf, slot = _cpu0_slot(collector)
    assert slot.key.netns != dead
    assert all(key.netns != dead for key in bpf[b"drops"])  # deleted from the hash
    assert _no_socket(collector.collect(), a) >= 5
