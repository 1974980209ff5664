"""The drop program as tp_btf (bpf/tp_btf.py): when it is tried, and what its entry is,
without a kernel (tests/integration/test_drop_tp_btf.py loads it)."""

from __future__ import annotations

import re

from otel_netreceiver.bpf import tp_btf
from otel_netreceiver.bpf.compose import composite_spec, render_composite
from otel_netreceiver.bpf.probes import PROBES
from otel_netreceiver.bpf.programs import Attach, ProbeSpec
from tests.unit.test_bpf_compose import FORMATS, OFFSETS

KFREE_6_11 = ("void *", "struct sk_buff *", "void *", "enum skb_drop_reason", "struct sock *")


class FakeBtf:
    """What ``plan`` asks of the BTF: the typedef's id and prototype."""

    def __init__(self, params: tuple[str, ...] | None) -> None:
        self.params = params

    def typedef_params(self, name: str) -> tuple[str, ...] | None:
        return self.params if name == "btf_trace_kfree_skb" else None

    def typedef_id(self, name: str) -> int | None:
        return 4242 if self.params is not None and name == "btf_trace_kfree_skb" else None


GROUP = (PROBES["packetloss"], PROBES["tcptwrcv"])


def test_the_drop_composite_gets_the_typedefs_btf_id_on_kernels_with_and_without_rx_sk() -> None:
    for params in (KFREE_6_11, KFREE_6_11[:4]):  # rx_sk: Linux 6.11
        spec, why = tp_btf.plan(composite_spec(GROUP), FakeBtf(params))  # type: ignore[arg-type]
        assert why == "" and spec is not None
        assert [(a.function, a.btf_id) for a in spec.attach] == [("onr_skb_kfree_skb", 4242)]


def test_it_stays_classic_without_the_typedef_another_prototype_or_another_tracepoint() -> None:
    spec = composite_spec(GROUP)
    assert tp_btf.plan(spec, FakeBtf(None)) == (  # type: ignore[arg-type]
        None, "the kernel's BTF has no btf_trace_kfree_skb")
    other = (*KFREE_6_11[:3], "u32")
    assert tp_btf.plan(spec, FakeBtf(other)) == (  # type: ignore[arg-type]
        None, "skb:kfree_skb's prototype here is (struct sk_buff *, void *, u32)")
    net = ProbeSpec("x", "x.c", (Attach("net", "net_dev_queue", "f"),))
    assert tp_btf.plan(net, FakeBtf(KFREE_6_11)) == (  # type: ignore[arg-type]
        None, "net:net_dev_queue has no tp_btf entry here")


def test_the_tp_btf_entry_fills_the_record_struct_from_the_typed_arguments() -> None:
    text = render_composite(GROUP, FORMATS, OFFSETS, None, True)
    assert "#define ONR_TP_BTF 1" in text  # netns.h: plain loads
    assert re.findall(r"^int (\w+)\(", text, re.M) == ["onr_skb_kfree_skb"]
    entry = text[text.index("int onr_skb_kfree_skb("):]
    assert entry.startswith("int onr_skb_kfree_skb(u64 *ctx) {")
    for copy in ("a.skbaddr = ctx[0];", "a.location = ctx[1];", "a.reason = (u32)ctx[2];",
                 "a.rx_sk = ctx[3];", "a.onr_ctx = ctx;"):
        assert copy in entry
    assert entry.index("on_kfree_skb(args);") < entry.index("on_tw_drop(args);")
    struct = re.search(r"struct kfree_skb_args \{.*?\};", text, re.S)
    assert struct is not None and struct.group(0).endswith("void *onr_ctx;\n};")
    # the classic composite is unchanged: the record is the context
    classic = render_composite(GROUP, FORMATS, OFFSETS)
    assert "int onr_skb_kfree_skb(void *args) {" in classic
    assert "#define ONR_TP_BTF" not in classic and "onr_ctx" not in classic
