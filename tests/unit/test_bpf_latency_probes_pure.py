"""The latency, TIME_WAIT and virtio probes' pure parts: rendering, map readers, the fentry
trial's bpf_attr, BTF lookup."""

from __future__ import annotations

import struct
from pathlib import Path

from otel_netreceiver.bpf.btf import KIND_FUNC, KIND_STRUCT, Btf, BtfType
from otel_netreceiver.bpf.fentry import (
    BPF_PROG_TYPE_TRACING,
    BPF_TRACE_FENTRY,
    pick_function,
    prog_load_attr,
)
from otel_netreceiver.bpf.probes import PROBES
from otel_netreceiver.bpf.probes.tcptwrcv import METRIC as TIMEWAIT
from otel_netreceiver.bpf.probes.virtcmdlatency import virtcmd_points
from otel_netreceiver.bpf.programs import render
from otel_netreceiver.bpf.readers import per_pod_counts, pod_latency_points
from otel_netreceiver.bpf.tracefs import parse_format
from otel_netreceiver.model import attrs

DATA = Path(__file__).parent.parent / "data" / "tracefs"
OFFSETS = {"OFF_NET_INUM": 176, "OFF_SOCK_NET": 48, "OFF_SOCK_STATE": 18, "OFF_SKB_DEV": 16,
           "OFF_SKB_SK": 24, "OFF_DEV_NET": 264}


def _formats(*names: str) -> dict:  # type: ignore[type-arg]
    out = {}
    for name in names:
        category, _, event = name.partition("_")
        out[(category, event)] = parse_format((DATA / f"{name}.format").read_text(), name)
    return out


def _labels(inode: int):  # type: ignore[no-untyped-def]
    return attrs({"netns.inode": str(inode)}) if inode else attrs({"netns.kind": "unknown"})


def test_latency_probes_render_with_the_kernels_layouts_and_shared_histograms() -> None:
    formats = _formats("sock_sk_data_ready", "sock_sock_recv_length", "sock_sock_send_length",
                       "tcp_tcp_destroy_sock",
                       "net_netif_receive_skb", "net_net_dev_queue")
    text = render(PROBES["socketlatency"], formats, OFFSETS)
    assert "struct ready_args {\n    u8 __pad_0[8];\n    u64 skaddr;\n};" in text
    assert "    u32 ret;" in text and "(int)args->ret" in text  # int ret, compared signed
    assert "static __always_inline void observe(" in text  # podlatency.h is included
    kernel = render(PROBES["kernellatency"], formats, OFFSETS)
    assert "#define OFF_SKB_SK 24" in kernel and "struct rx_args {" in kernel
    attached = {(a.category, a.event) for a in PROBES["kernellatency"].attach}
    assert ("syscalls", "sys_enter_sendto") in attached and ("irq", "softirq_exit") in attached


def test_virtcmdlatency_renders_the_function_this_kernel_has() -> None:
    text = render(PROBES["virtcmdlatency"], {}, OFFSETS, "virtnet_send_command")
    assert "KFUNC_PROBE(virtnet_send_command, void *vi, u8 class, u8 cmd)" in text
    assert "VIRT_FUNCTION" not in text and PROBES["virtcmdlatency"].attach == ()


def test_pick_function_prefers_the_newer_name_and_returns_its_btf_id() -> None:
    types = [BtfType("", 0, 0), BtfType("sock", KIND_STRUCT, 8),
             BtfType("virtnet_send_command", KIND_FUNC, 0),
             BtfType("virtnet_send_command_reply", KIND_FUNC, 0)]
    candidates = ("virtnet_send_command_reply", "virtnet_send_command")
    assert pick_function(Btf(types), candidates) == ("virtnet_send_command_reply", 3)
    assert pick_function(Btf(types[:3]), candidates) == ("virtnet_send_command", 2)
    assert pick_function(Btf(types[:2]), ("sock",)) is None  # a struct is not a function


def test_fentry_trial_attr_follows_uapi_bpf_attr_layout() -> None:
    attr = prog_load_attr(0x1000, 0x2000, 4242)
    prog_type, insn_cnt, insns, licence = struct.unpack_from("<IIQQ", attr, 0)
    assert (prog_type, insn_cnt, insns, licence) == (BPF_PROG_TYPE_TRACING, 2, 0x1000, 0x2000)
    assert struct.unpack_from("<I", attr, 68)[0] == BPF_TRACE_FENTRY
    assert struct.unpack_from("<I", attr, 108)[0] == 4242
    assert attr[48:62] == b"onr_fentry_try"


def test_pod_latency_rows_become_one_histogram_per_pod_and_direction() -> None:
    rows = [(7, 0, 28, 3, 500_000_000), (7, 0, 12, 1, 100_000_000), (7, 1, 14, 2, 30_000),
            (0, 0, 20, 5, 5_000_000)]
    points = {(dict(p.attributes).get("netns.inode"),
               dict(p.attributes)["network.io.direction"]): p.value
              for p in pod_latency_points("netreceiver.pod.socket.latency", rows, _labels)}
    assert set(points) == {("7", "receive"), ("7", "transmit"), (None, "receive")}
    rx = points[("7", "receive")]
    assert rx.count == 4 and rx.sum == 0.6
    assert rx.bucket_counts[28 - 10] == 3 and rx.bucket_counts[12 - 10] == 1


def test_timewait_and_virtio_rows() -> None:
    tw = per_pod_counts(TIMEWAIT, [(7, 2), (7, 1), (0, 4)], _labels)
    assert {p.attributes: p.value for p in tw} == {_labels(7): 3, _labels(0): 4}
    virt = virtcmd_points({1: {16: 2}, 99: {20: 1}}, {1: 100_000, 99: 1_000_000})
    classes = {dict(p.attributes)["virtio.ctrl.class"]: p.value.count for p in virt}
    assert classes == {"mac": 2, "99": 1}
