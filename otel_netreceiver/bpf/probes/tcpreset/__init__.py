"""tcpreset: TCP resets sent (tcp:tcp_send_reset) and received (tcp:tcp_receive_reset), per
pod, direction, socket state and the kernel's reset reason; event types TCP_SEND_RST and
TCP_RECEIVE_RST with the connection's addresses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from otel_netreceiver.bpf.probe import EventType, MetricRow, Probe
from otel_netreceiver.bpf.programs import INET_FIELDS, Attach, Formats, ProbeSpec, StructSpec
from otel_netreceiver.bpf.readers import NetnsLabels, definition, with_attrs
from otel_netreceiver.bpf.tracefs import TracepointFormat
from otel_netreceiver.kernel_abi import tcp_state_name
from otel_netreceiver.model import Attributes, Kind, Point

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps
    from otel_netreceiver.events.model import Names, Record

NO_REASON, UNKNOWN_REASON = 0xFFFFFFFF, 0xFFFFFFFE  # the programs' reason sentinels
METRIC = "netreceiver.pod.tcp.resets"


def send_reason(text: str, formats: Formats) -> str:
    """SEND_REASON: Linux >= 6.10 gives tcp_send_reset a reason (enum sk_rst_reason,
    include/trace/events/tcp.h); older kernels don't (UNKNOWN_REASON)."""
    send = formats.get(("tcp", "tcp_send_reset"))
    return text.replace("SEND_REASON", "args->reason" if send and send.field("reason")
                        else "0xFFFFFFFE")


def _addresses(fmt: TracepointFormat | None, sock: str) -> str:
    """C that fills the record's sockaddrs from whatever this kernel's tracepoint carries."""
    saddr = fmt.field("saddr") if fmt else None
    if saddr is not None and saddr.size == 28:  # Linux >= 6.10: struct sockaddr_in6-sized
        return ("__builtin_memcpy(e->saddr, args->saddr, 28);\n"
                "    __builtin_memcpy(e->daddr, args->daddr, 28);")
    if fmt is not None and all(fmt.field(f) for f in INET_FIELDS):
        return ("ev_inet(e, args->family, args->sport, args->dport, args->saddr, args->daddr,"
                " args->saddr_v6, args->daddr_v6);")
    # No addresses in the tracepoint: read the socket's 4-tuple at BTF offsets.
    return f"ev_from_sock(e, {sock});"


def event_text(text: str, formats: Formats) -> str:
    text = send_reason(text, formats)
    text = text.replace("SEND_ADDRS", _addresses(formats.get(("tcp", "tcp_send_reset")),
                                                 "args->skaddr"))
    return text.replace("RECV_ADDRS", _addresses(formats.get(("tcp", "tcp_receive_reset")),
                                                 "args->skaddr"))


def reset_points(items: Iterable[tuple[int, int, int, int, int]], reasons: Mapping[int, str],
                 labels: NetnsLabels) -> list[Point]:
    """(netns, direction, state, reason, count) → per-pod resets."""
    metric = definition(METRIC)
    totals: defaultdict[Attributes, int] = defaultdict(int)
    for netns, direction, state, reason, count in items:
        reason_name = ("none" if reason == NO_REASON else "unknown" if reason == UNKNOWN_REASON
                       else reasons.get(reason, str(reason)))
        a = with_attrs(labels(netns), **{"tcp.reset.direction": "sent" if direction == 0
                                         else "received",
                                         "tcp.state": tcp_state_name(state),
                                         "tcp.reset.reason": reason_name.lower()})
        totals[a] += count
    return [Point(metric, a, count) for a, count in totals.items()]


def read(maps: ProbeMaps) -> list[Point]:
    rows = maps.netns_items("resets", ("netns", "direction", "state", "reason"))
    return reset_points(rows, maps.enum("tcp", "tcp_send_reset", "reason"), maps.labels)


def event_reason(record: Record, names: Names) -> str:
    if record.reason == NO_REASON:
        return ""
    if record.reason == UNKNOWN_REASON:
        return "unknown"
    return names.enum("tcp", "tcp_send_reset", "reason").get(record.reason, str(record.reason))


def event_attributes(record: Record) -> dict[str, str]:
    return {"tcp.state": tcp_state_name(record.state)}


_SEND = StructSpec("SEND_ARGS_STRUCT", "tcp", "tcp_send_reset", "send_reset_args",
                   ("skbaddr", "skaddr", "state"), optional=("reason",))
_RECV = StructSpec("RECV_ARGS_STRUCT", "tcp", "tcp_receive_reset", "receive_reset_args",
                   ("skaddr",))

PROBE = Probe(
    "tcpreset",
    ProbeSpec("tcpreset", "counting.c", (Attach("tcp", "tcp_send_reset", "on_send_reset"),
                                         Attach("tcp", "tcp_receive_reset", "on_receive_reset")),
              (_SEND, _RECV), package=__name__, text=send_reason),
    read,
    (MetricRow(METRIC, Kind.COUNTER, "{segment}",
               ("tcp.reset.direction", "tcp.state", "tcp.reset.reason"),
               "TCP resets sent (tcp:tcp_send_reset; state no_socket = no socket matched, ACK's "
               "TCPRESET_NOSOCK) and received (tcp:tcp_receive_reset), with the kernel's reset "
               "reason where it gives one (probe tcpreset).", pod=True),),
    default=True,
    events=ProbeSpec(
        "tcpreset", "events.c", (Attach("tcp", "tcp_send_reset", "ev_on_send_reset"),
                                 Attach("tcp", "tcp_receive_reset", "ev_on_receive_reset")),
        (StructSpec(_SEND.placeholder, "tcp", "tcp_send_reset", "send_reset_args",
                    _SEND.fields, optional=("reason", *INET_FIELDS)),
         StructSpec(_RECV.placeholder, "tcp", "tcp_receive_reset", "receive_reset_args",
                    _RECV.fields, optional=INET_FIELDS)),
        package=__name__, text=event_text),
    event_types=(EventType("TCP_SEND_RST", 9, "INFO", True, event_reason, event_attributes),
                 EventType("TCP_RECEIVE_RST", 9, "INFO", True, event_reason, event_attributes)),
)
