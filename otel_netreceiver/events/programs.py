"""The event programs: which tracepoints each attaches to, and how its C text is rendered.

One BPF object per probe, separate from the counting programs of bpf/programs.py,
so events cost nothing when they are off and a refused event program costs only
itself. Rendering is pure: bpf/programs.render (tracefs structs, BTF offsets)
plus the settings below as #defines and events.h, tested without loading.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.programs import Attach, ProbeSpec, StructSpec, kernel_offsets, render
from otel_netreceiver.bpf.programs import template as program_template
from otel_netreceiver.bpf.tracefs import TracepointFormat
from otel_netreceiver.events.model import EVENT_NAMES

_INET = ("sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6")

EVENT_PROBES: dict[str, ProbeSpec] = {
    "tcpreset": ProbeSpec(
        "tcpreset", "ev_tcpreset.c",
        (Attach("tcp", "tcp_send_reset", "ev_on_send_reset"),
         Attach("tcp", "tcp_receive_reset", "ev_on_receive_reset")),
        (StructSpec("SEND_ARGS_STRUCT", "tcp", "tcp_send_reset", "send_reset_args",
                    ("skbaddr", "skaddr", "state"), optional=("reason", *_INET)),
         StructSpec("RECV_ARGS_STRUCT", "tcp", "tcp_receive_reset", "receive_reset_args",
                    ("skaddr",), optional=_INET))),
    "packetloss": ProbeSpec(
        "packetloss", "ev_packetloss.c", (Attach("skb", "kfree_skb", "ev_on_kfree_skb"),),
        (StructSpec("ARGS_STRUCT", "skb", "kfree_skb", "kfree_skb_args",
                    ("skbaddr", "location", "rx_sk", "protocol", "reason")),)),
    "tcpretrans": ProbeSpec(
        "tcpretrans", "ev_tcpretrans.c",
        (Attach("tcp", "tcp_retransmit_skb", "ev_on_retransmit"),),
        (StructSpec("ARGS_STRUCT", "tcp", "tcp_retransmit_skb", "retransmit_args",
                    ("skaddr", "state", *_INET)),)),
    "net_softirq": ProbeSpec(
        "net_softirq", "ev_softirq.c", (Attach("irq", "softirq_raise", "ev_on_raise"),
                                        Attach("irq", "softirq_entry", "ev_on_entry"),
                                        Attach("irq", "softirq_exit", "ev_on_exit")),
        needs_btf=False),
    "netiftxlat": ProbeSpec(
        "netiftxlat", "ev_netiftxlat.c", (Attach("net", "net_dev_queue", "ev_on_queue"),
                                          Attach("net", "net_dev_xmit", "ev_on_xmit")),
        (StructSpec("QUEUE_ARGS_STRUCT", "net", "net_dev_queue", "queue_args",
                    ("skbaddr", "name")),
         StructSpec("XMIT_ARGS_STRUCT", "net", "net_dev_xmit", "xmit_args",
                    ("skbaddr", "name"))),
        needs_btf=False),
}

# event type → the probe whose program emits it
PROBE_OF = {"TCP_SEND_RST": "tcpreset", "TCP_RECEIVE_RST": "tcpreset",
            "PACKETLOSS": "packetloss", "TCP_RETRANS": "tcpretrans",
            "NET_SOFTIRQ_SLOW": "net_softirq", "NETIF_TXLAT_SLOW": "netiftxlat"}


@dataclass(frozen=True, slots=True)
class EventSettings:
    types: tuple[str, ...]
    kernel_budget: int
    softirq_threshold_ns: int
    txlat_threshold_ns: int
    stacks: bool


def probes_for(types: tuple[str, ...]) -> tuple[str, ...]:
    """The probes to load for these event types, in EVENT_PROBES order."""
    wanted = {PROBE_OF[t] for t in types}
    return tuple(p for p in EVENT_PROBES if p in wanted)


def event_offsets(btf: Btf) -> dict[str, int]:
    """kernel_offsets plus what addresses need: sock_common's 4-tuple, skb headers."""
    common = btf.offset("sock", "__sk_common")
    offsets = kernel_offsets(btf)
    for name, field in (("OFF_SKC_FAMILY", "skc_family"), ("OFF_SKC_NUM", "skc_num"),
                        ("OFF_SKC_DPORT", "skc_dport"), ("OFF_SKC_DADDR", "skc_daddr"),
                        ("OFF_SKC_RCV_SADDR", "skc_rcv_saddr"),
                        ("OFF_SKC_V6_DADDR", "skc_v6_daddr"),
                        ("OFF_SKC_V6_RCV_SADDR", "skc_v6_rcv_saddr")):
        offsets[name] = common + btf.offset("sock_common", field)
    offsets["OFF_SKB_HEAD"] = btf.offset("sk_buff", "head")
    offsets["OFF_SKB_NH"] = btf.offset("sk_buff", "network_header")
    offsets["OFF_SKB_TH"] = btf.offset("sk_buff", "transport_header")
    return offsets


def _addresses(fmt: TracepointFormat | None, sock: str) -> str:
    """C that fills the record's sockaddrs from whatever this kernel's tracepoint carries."""
    saddr = fmt.field("saddr") if fmt else None
    if saddr is not None and saddr.size == 28:  # Linux >= 6.10: struct sockaddr_in6-sized
        return ("__builtin_memcpy(e->saddr, args->saddr, 28);\n"
                "    __builtin_memcpy(e->daddr, args->daddr, 28);")
    if fmt is not None and all(fmt.field(f) for f in _INET):
        return ("ev_inet(e, args->family, args->sport, args->dport, args->saddr, args->daddr,"
                " args->saddr_v6, args->daddr_v6);")
    # No addresses in the tracepoint: read the socket's 4-tuple at BTF offsets.
    return f"ev_from_sock(e, {sock});"


def render_events(spec: ProbeSpec, formats: dict[tuple[str, str], TracepointFormat],
                  offsets: dict[str, int], settings: EventSettings) -> str:
    """The event program's C text (pure)."""
    defines = dict(offsets)
    defines.update({f"EV_{name}": index for index, name in enumerate(EVENT_NAMES)})
    defines.update({f"EV_ON_{name}": int(name in settings.types) for name in EVENT_NAMES})
    defines.update({"EV_TYPES": len(EVENT_NAMES), "EV_BUDGET": settings.kernel_budget,
                    "EV_STACKS": int(settings.stacks),
                    "EV_SOFTIRQ_NS": f"{settings.softirq_threshold_ns}ULL",
                    "EV_TXLAT_NS": f"{settings.txlat_threshold_ns}ULL"})
    text = render(spec, formats, defines)
    text = text.replace("SEND_ADDRS", _addresses(formats.get(("tcp", "tcp_send_reset")),
                                                 "args->skaddr"))
    text = text.replace("RECV_ADDRS", _addresses(formats.get(("tcp", "tcp_receive_reset")),
                                                 "args->skaddr"))
    return text.replace("EVENTS_H", program_template("events.h"))
