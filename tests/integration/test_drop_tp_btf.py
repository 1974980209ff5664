"""The drop program (skb:kfree_skb: packetloss, tcptwrcv, dns's NO_SOCKET handler) runs as a
BTF raw tracepoint here (bpf/tp_btf.py), and a refused tp_btf program leaves the classic
tracepoint composite counting the same drops.

Real namespaces and drops (UDP to a closed port: NO_SOCKET); the program type is the
kernel's (/proc/self/fdinfo of the program fd: 26 BPF_PROG_TYPE_TRACING, 5 TRACEPOINT).
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from otel_netreceiver.bpf import tp_btf
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from tests.integration.test_bpf_composite import _counts_and_lost
from tests.support.pods import kernel_supports_test_pods, pod_pair

pytestmark = pytest.mark.root
REASON = kernel_supports_test_pods() or (
    "" if Path("/sys/kernel/btf/vmlinux").exists() else "this kernel has no BTF")
if REASON:
    pytest.skip(REASON, allow_module_level=True)

PROBES = ["packetloss", "tcptwrcv", "dns"]
ENTRY = b"onr_skb_kfree_skb"


def _prog_type(fd: int) -> int:
    info = dict(line.split(":\t", 1) for line in
                Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines() if ":\t" in line)
    return int(info["prog_type"])


def _drop_program(collector: EbpfCollector,
                  probes: list[str] = PROBES) -> tuple[int, dict[str, str]]:
    """The kfree_skb entry's program type, and the probes' status words."""
    [(name, (_, bpf))] = collector.objects().items()
    assert name == "+".join(probes) and list(bpf.tracepoint_fds) == [b"skb:kfree_skb"]
    words = {p.split(":")[0].strip(): p for p in collector.probe().reason.split("; ")
             if p.split(":")[0].strip() in probes}
    return _prog_type(bpf.funcs[ENTRY].fd), words


def test_the_drop_program_is_a_tp_btf_program_here_and_counts_every_drop() -> None:
    with pod_pair(7) as (a, _b):
        collector = EbpfCollector(EbpfConfig(probes=PROBES), "/proc", NoPods())
        try:
            assert collector.statuses() == dict.fromkeys(PROBES, "")
            prog_type, words = _drop_program(collector)
            assert prog_type == tp_btf.BPF_PROG_TYPE_TRACING
            assert words["packetloss"] == "packetloss: loaded (tp_btf)"
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30 and lost == {"packetloss": 0, "tcptwrcv": 0, "dns": 0}
        finally:
            collector.close()


def test_a_refused_tp_btf_program_falls_back_to_the_classic_one_with_the_same_counts(
        monkeypatch) -> None:
    def refused(code: bytes, name: bytes, btf_id: int) -> int:
        raise OSError(errno.EACCES, "tp_btf load refused (EACCES): refused by the test")

    monkeypatch.setattr(tp_btf, "load", refused)
    with pod_pair(7) as (a, _b):
        collector = EbpfCollector(EbpfConfig(probes=PROBES), "/proc", NoPods())
        try:
            assert collector.statuses() == dict.fromkeys(PROBES, "")
            prog_type, words = _drop_program(collector)
            assert prog_type == 5  # BPF_PROG_TYPE_TRACEPOINT
            assert "classic tracepoint: tp_btf load failed" in words["dns"]
            assert "refused by the test" in words["dns"]
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30 and lost == {"packetloss": 0, "tcptwrcv": 0, "dns": 0}
        finally:
            collector.close()


def test_a_lone_packetloss_probe_is_a_tp_btf_program_too() -> None:
    with pod_pair(7) as (a, _b):
        collector = EbpfCollector(EbpfConfig(probes=["packetloss"]), "/proc", NoPods())
        try:
            prog_type, words = _drop_program(collector, ["packetloss"])
            assert prog_type == tp_btf.BPF_PROG_TYPE_TRACING
            assert words["packetloss"] == "packetloss: loaded (tp_btf)"
            drops, lost = _counts_and_lost(collector, a)
            assert drops == 30 and lost == {"packetloss": 0}
        finally:
            collector.close()
