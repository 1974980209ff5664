"""How event-record programs are rendered: the probes' ``events`` specs plus the settings below
as #defines, include/events.h and the record struct (events/record.py).

One BPF object per probe when the probe's counters are not loaded; when they are, the
handler is compiled into the counting object on the same tracepoint (events/hosting.py),
so a drop costs one program invocation, not two. Either way events cost nothing when
they are off, and a refused combined object falls back to an event object of its own.
Rendering is pure: bpf/programs.render (tracefs structs, BTF offsets, the probe's
own hooks) plus the event defines, tested without loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.probes import EVENT_NAMES, EVENT_PROBES, PROBE_OF
from otel_netreceiver.bpf.programs import (
    Formats,
    ProbeSpec,
    body,
    header,
    kernel_offsets,
    render,
)
from otel_netreceiver.events.record import c_struct

__all__ = ["EVENT_PROBES", "PROBE_OF", "EventSettings", "event_defines", "event_handler",
           "event_offsets", "events_header", "probes_for", "render_events"]


@dataclass(frozen=True, slots=True)
class EventSettings:
    types: tuple[str, ...]
    kernel_budget: int
    softirq_threshold_ns: int
    txlat_threshold_ns: int
    stacks: bool


def probes_for(types: tuple[str, ...]) -> tuple[str, ...]:
    """The probes to load for these event types, in registration order."""
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


def events_header() -> str:
    """include/events.h with the record struct rendered from events/record.py."""
    return header("events.h").replace("EV_RECORD_STRUCT", c_struct())


def event_defines(settings: EventSettings) -> dict[str, object]:
    """The settings as the #defines events.h and the handlers read."""
    defines: dict[str, object] = {f"EV_{name}": index for index, name in enumerate(EVENT_NAMES)}
    defines.update({f"EV_ON_{name}": int(name in settings.types) for name in EVENT_NAMES})
    defines.update({"EV_TYPES": len(EVENT_NAMES), "EV_BUDGET": settings.kernel_budget,
                    "EV_STACKS": int(settings.stacks),
                    "EV_SOFTIRQ_NS": f"{settings.softirq_threshold_ns}ULL",
                    "EV_TXLAT_NS": f"{settings.txlat_threshold_ns}ULL"})
    return defines


def render_events(spec: ProbeSpec, formats: Formats, offsets: dict[str, int],
                  settings: EventSettings) -> str:
    """The event program's C text (pure)."""
    defines: dict[str, object] = {**offsets, **event_defines(settings)}
    return render(spec, formats, defines).replace("EVENTS_H", events_header())


def event_handler(spec: ProbeSpec, formats: Formats, defines: Mapping[str, object]) -> str:
    """The event handler's own text for an object that renders the structs and events.h
    once (bpf/compose.py, ``Hosted``)."""
    return body(spec, formats, defines, structs=False).replace("EVENTS_H", "")
