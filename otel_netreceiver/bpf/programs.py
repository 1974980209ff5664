"""The BPF probes: which tracepoints each attaches to, and how its C text is rendered.

Rendering is a pure function of (template, tracepoint formats, BTF offsets), so
it is tested without loading anything; the C lives in programs/*.c.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from otel_netreceiver.bpf.btf import Btf, BtfError
from otel_netreceiver.bpf.tracefs import TracepointFormat, render_struct


@dataclass(frozen=True, slots=True)
class Attach:
    category: str
    event: str
    function: str


@dataclass(frozen=True, slots=True)
class StructSpec:
    placeholder: str
    category: str
    event: str
    struct_name: str
    fields: tuple[str, ...]
    optional: tuple[str, ...] = ()  # included when this kernel's tracepoint has them


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    name: str
    source: str
    attach: tuple[Attach, ...]
    structs: tuple[StructSpec, ...] = ()
    needs_btf: bool = True
    headers: tuple[str, ...] = ()  # extra programs/*.h after common.h and netns.h
    functions: tuple[str, ...] = ()  # fentry targets, first one in this kernel's BTF wins




def _send_enter(prefix: str) -> tuple[Attach, ...]:
    return (Attach("syscalls", "sys_enter_sendto", f"{prefix}send_enter"),
            Attach("syscalls", "sys_enter_sendmsg", f"{prefix}send_enter"))


_READY = StructSpec("READY_ARGS_STRUCT", "sock", "sk_data_ready", "ready_args", ("skaddr",))
_QUEUE = StructSpec("QUEUE_ARGS_STRUCT", "net", "net_dev_queue", "queue_args", ("skbaddr",))
_SEND = StructSpec("SEND_ARGS_STRUCT", "sock", "sock_send_length", "send_args", ("sk", "ret"))


# tcp:tcp_retransmit_skb's remote endpoint (include/trace/events/tcp.h, since Linux 4.16)
PEER_FIELDS = ("family", "dport", "daddr", "daddr_v6")


def retrans_peer_limit(fmt: TracepointFormat | None, wanted: int) -> int:
    """RETRANS_PEERS for this kernel: 0 when its tracepoint lacks the endpoint fields."""
    if wanted <= 0 or fmt is None or not all(fmt.field(f) for f in PEER_FIELDS):
        return 0
    return wanted


PROBES: dict[str, ProbeSpec] = {
    "packetloss": ProbeSpec(
        "packetloss", "packetloss.c", (Attach("skb", "kfree_skb", "on_kfree_skb"),),
        (StructSpec("ARGS_STRUCT", "skb", "kfree_skb", "kfree_skb_args",
                    ("skbaddr", "location", "rx_sk", "reason")),)),
    "tcpreset": ProbeSpec(
        "tcpreset", "tcpreset.c", (Attach("tcp", "tcp_send_reset", "on_send_reset"),
                                   Attach("tcp", "tcp_receive_reset", "on_receive_reset")),
        (StructSpec("SEND_ARGS_STRUCT", "tcp", "tcp_send_reset", "send_reset_args",
                    ("skbaddr", "skaddr", "state"), optional=("reason",)),
         StructSpec("RECV_ARGS_STRUCT", "tcp", "tcp_receive_reset", "receive_reset_args",
                    ("skaddr",)))),
    "tcpretrans": ProbeSpec(
        "tcpretrans", "tcpretrans.c", (Attach("tcp", "tcp_retransmit_skb", "on_retransmit"),),
        (StructSpec("ARGS_STRUCT", "tcp", "tcp_retransmit_skb", "retransmit_args",
                    ("skaddr", "state"), optional=PEER_FIELDS),)),
    "net_softirq": ProbeSpec(
        "net_softirq", "softirq.c", (Attach("irq", "softirq_raise", "on_raise"),
                                     Attach("irq", "softirq_entry", "on_entry"),
                                     Attach("irq", "softirq_exit", "on_exit")),
        needs_btf=False),
    "netiftxlat": ProbeSpec(
        "netiftxlat", "netiftxlat.c", (Attach("net", "net_dev_queue", "on_queue"),
                                       Attach("net", "net_dev_xmit", "on_xmit")),
        (StructSpec("QUEUE_ARGS_STRUCT", "net", "net_dev_queue", "queue_args",
                    ("skbaddr", "name")),
         StructSpec("XMIT_ARGS_STRUCT", "net", "net_dev_xmit", "xmit_args",
                    ("skbaddr", "name"))),
        needs_btf=False),
    "socketlatency": ProbeSpec(
        "socketlatency", "socketlatency.c",
        (Attach("sock", "sk_data_ready", "sl_data_ready"),
         Attach("sock", "sock_recv_length", "sl_recv_length"), *_send_enter("sl_"),
         Attach("sock", "sock_send_length", "sl_send_length"),
         Attach("tcp", "tcp_destroy_sock", "sl_destroy"),
         Attach("net", "net_dev_queue", "sl_queue")),
        (_READY, StructSpec("RECV_ARGS_STRUCT", "sock", "sock_recv_length", "recv_args",
                            ("sk", "ret", "flags")), _SEND,
         StructSpec("DESTROY_ARGS_STRUCT", "tcp", "tcp_destroy_sock", "destroy_args",
                    ("skaddr",)), _QUEUE),
        headers=("podlatency.h",)),
    "kernellatency": ProbeSpec(
        "kernellatency", "kernellatency.c",
        (Attach("net", "netif_receive_skb", "kl_receive"),
         Attach("sock", "sk_data_ready", "kl_data_ready"),
         Attach("irq", "softirq_exit", "kl_softirq_exit"), *_send_enter("kl_"),
         Attach("net", "net_dev_queue", "kl_queue"),
         Attach("sock", "sock_send_length", "kl_send_length")),
        (StructSpec("RX_ARGS_STRUCT", "net", "netif_receive_skb", "rx_args", ("skbaddr",)),
         _READY, _QUEUE, _SEND),
        headers=("podlatency.h",)),
    "tcptwrcv": ProbeSpec(
        "tcptwrcv", "tcptwrcv.c", (Attach("skb", "kfree_skb", "on_tw_drop"),),
        (StructSpec("ARGS_STRUCT", "skb", "kfree_skb", "kfree_skb_args", ("rx_sk",)),)),
    # no tracepoints: bcc attaches its KFUNC_PROBE / KRETFUNC_PROBE programs when it loads
    "virtcmdlatency": ProbeSpec(
        "virtcmdlatency", "virtcmdlatency.c", (),
        functions=("virtnet_send_command_reply", "virtnet_send_command")),
}


def netns_cookie_offset(btf: Btf) -> dict[str, int]:
    """OFF_NET_COOKIE: struct net's ns.ns_id (the namespace cookie ioctl(NS_GET_ID) returns,
    include/linux/ns_common.h), or nothing on kernels without it."""
    try:
        return {"OFF_NET_COOKIE": btf.offset("net", "ns") + btf.offset("ns_common", "ns_id")}
    except BtfError:
        return {}


def kernel_offsets(btf: Btf) -> dict[str, int]:
    """Offsets the probes read, from the running kernel's BTF (net/core, include/net/sock.h)."""
    net_inum = btf.offset("net", "ns") + btf.offset("ns_common", "inum")
    return {
        **netns_cookie_offset(btf),
        "OFF_NET_INUM": net_inum,
        "OFF_SOCK_NET": btf.offset("sock", "__sk_common") + btf.offset("sock_common", "skc_net"),
        "OFF_SOCK_STATE": btf.offset("sock", "__sk_common")
        + btf.offset("sock_common", "skc_state"),
        "OFF_SKB_DEV": btf.offset("sk_buff", "dev"),
        "OFF_SKB_SK": btf.offset("sk_buff", "sk"),
        "OFF_DEV_NET": btf.offset("net_device", "nd_net"),
    }


def template(name: str) -> str:
    return resources.files("otel_netreceiver.bpf").joinpath("programs", name).read_text()


def render(spec: ProbeSpec, formats: dict[tuple[str, str], TracepointFormat],
           offsets: dict[str, int], function: str = "") -> str:
    """The program's C text: offsets as #defines, common helpers, structs from tracefs.

    ``function`` is the fentry target the kernel has (``spec.functions``), for VIRT_FUNCTION.
    """
    text = template(spec.source).replace("VIRT_FUNCTION", function)
    if "TIMING_SAMPLE" in text and int(offsets.get("TIMING_SAMPLE", 0)) < 1:
        raise ValueError(f"probe {spec.name} times one event in TIMING_SAMPLE: pass "
                         f"TIMING_SAMPLE >= 1 (collectors.ebpf.timing_sample), got "
                         f"{offsets.get('TIMING_SAMPLE')!r}")
    for struct in spec.structs:
        fmt = formats[(struct.category, struct.event)]
        fields = struct.fields + tuple(f for f in struct.optional if fmt.field(f))
        text = text.replace(struct.placeholder, render_struct(fmt, struct.struct_name, fields))
    send = formats.get(("tcp", "tcp_send_reset"))
    # Linux >= 6.10 gives tcp_send_reset a reason (enum sk_rst_reason); older kernels don't.
    text = text.replace("SEND_REASON", "args->reason" if send and send.field("reason")
                        else "0xFFFFFFFE")
    defines = "".join(f"#define {key} {value}\n" for key, value in sorted(offsets.items()))
    # kernel_abi.h: TCP states, address families, softirq vectors named once (kernel_abi.py)
    helpers = template("kernel_abi.h") + template("common.h")
    helpers += template("netns.h") if spec.needs_btf else ""
    helpers += "".join(template(header) for header in spec.headers)
    return defines + helpers + "\n" + text
