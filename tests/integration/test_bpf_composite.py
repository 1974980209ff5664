"""Probes sharing a tracepoint run as one program, and fall back to one each if it fails.

Real namespaces and drops (UDP to a closed port: NO_SOCKET on skb:kfree_skb), the agent's
own collector; the kernel's list of attached programs (bpftool-free: the collector's own
objects and their functions) shows one program where there were two.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from tests.support.pods import Pod, kernel_supports_test_pods, pod_pair

pytestmark = pytest.mark.root
REASON = kernel_supports_test_pods() or (
    "" if Path("/sys/kernel/btf/vmlinux").exists() else "this kernel has no BTF")
if REASON:
    pytest.skip(REASON, allow_module_level=True)

SHARED = ["packetloss", "tcptwrcv"]  # both on skb:kfree_skb


def _drops(collection: Collection, pod: Pod) -> float:
    return sum(p.value for p in collection.points
               if p.metric.name == "netreceiver.pod.packet.drops"
               and dict(p.attributes).get("k8s.pod.uid") == pod.uid
               and dict(p.attributes).get("drop.reason") == "NO_SOCKET")


def _flood(pod: Pod, n: int) -> None:
    pod.exec("python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)"
             f"\nfor _ in range({n}): s.sendto(b'x', ('127.0.0.1', 9))")


def _counts_and_lost(collector: EbpfCollector, pod: Pod) -> tuple[float, dict[str, float]]:
    before = collector.collect()
    _flood(pod, 30)
    after = collector.collect()
    assert not after.errors, after.errors
    lost = {dict(p.attributes)["probe"]: p.value for p in after.points
            if p.metric.name == "netreceiver.bpf.lost"}
    return _drops(after, pod) - _drops(before, pod), lost


def test_probes_on_one_tracepoint_are_one_program_and_each_still_counts() -> None:
    with pod_pair(7) as (a, _b):
        collector = EbpfCollector(EbpfConfig(probes=SHARED), "/proc", NoPods())
        try:
            assert collector.statuses() == dict.fromkeys(SHARED, "")
            [(name, (spec, bpf))] = collector.objects().items()
            assert name == "packetloss+tcptwrcv"
            assert [a.function for a in spec.attach] == ["onr_skb_kfree_skb"]
            assert list(bpf.tracepoint_fds) == [b"skb:kfree_skb"]  # one attachment
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30
            assert lost == {"packetloss": 0, "tcptwrcv": 0}  # a point per probe, not per object
        finally:
            collector.close()


def test_a_composite_the_compiler_refuses_falls_back_to_one_program_each(monkeypatch) -> None:
    from otel_netreceiver.collectors import ebpf

    monkeypatch.setattr(ebpf, "render_composite",
                        lambda group, formats, offsets: "#error composite refused by the test\n")
    with pod_pair(7) as (a, _b):
        collector = EbpfCollector(EbpfConfig(probes=SHARED), "/proc", NoPods())
        try:
            assert collector.statuses() == dict.fromkeys(SHARED, "")  # both loaded, alone
            assert sorted(collector.objects()) == SHARED
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30 and lost == {"packetloss": 0, "tcptwrcv": 0}
        finally:
            collector.close()
