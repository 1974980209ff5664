"""socketlatency: time data waits at a socket, per pod and direction (sock:* and the
sendto/sendmsg syscall tracepoints; opt-in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from otel_netreceiver.bpf.probe import MetricRow, Probe
from otel_netreceiver.bpf.programs import Attach, ProbeSpec, StructSpec
from otel_netreceiver.bpf.readers import pod_latency_points
from otel_netreceiver.model import Kind, Point

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps

METRIC = "netreceiver.pod.socket.latency"
READY = StructSpec("READY_ARGS_STRUCT", "sock", "sk_data_ready", "ready_args", ("skaddr",))
QUEUE = StructSpec("QUEUE_ARGS_STRUCT", "net", "net_dev_queue", "queue_args", ("skbaddr",))
SEND = StructSpec("SEND_ARGS_STRUCT", "sock", "sock_send_length", "send_args", ("sk", "ret"))
PER_SEND = "also runs on every sendto/sendmsg"


def send_enter(prefix: str) -> tuple[Attach, ...]:
    return (Attach("syscalls", "sys_enter_sendto", f"{prefix}send_enter"),
            Attach("syscalls", "sys_enter_sendmsg", f"{prefix}send_enter"))


def read_latency(name: str) -> Callable[[ProbeMaps], list[Point]]:
    """A reader of include/podlatency.h's per-pod latency map, emitting ``name``."""
    def read(maps: ProbeMaps) -> list[Point]:
        rows = [(key.netns, key.direction, key.slot, sum(v.count for v in per_cpu),
                 sum(v.sum for v in per_cpu))  # per-CPU {count, sum}
                for key, per_cpu in maps.live_items("latency")]
        return pod_latency_points(name, rows, maps.labels)
    return read


PROBE = Probe(
    "socketlatency",
    ProbeSpec("socketlatency", "counting.c",
              (Attach("sock", "sk_data_ready", "sl_data_ready"),
               Attach("sock", "sock_recv_length", "sl_recv_length"), *send_enter("sl_"),
               Attach("sock", "sock_send_length", "sl_send_length"),
               Attach("tcp", "tcp_destroy_sock", "sl_destroy"),
               Attach("net", "net_dev_queue", "sl_queue")),
              (READY, StructSpec("RECV_ARGS_STRUCT", "sock", "sock_recv_length", "recv_args",
                                 ("sk", "ret", "flags")), SEND,
               StructSpec("DESTROY_ARGS_STRUCT", "tcp", "tcp_destroy_sock", "destroy_args",
                          ("skaddr",)), QUEUE),
              headers=("podlatency.h",), package=__name__),
    read_latency(METRIC),
    (MetricRow(METRIC, Kind.HISTOGRAM, "s", ("network.io.direction",),
               "Time data waits at a socket (probe socketlatency). receive: from "
               "sock:sk_data_ready (data queued, reader woken; the first since the last read) to "
               "sock:sock_recv_length returning data. transmit: from the sendto/sendmsg "
               "syscall's entry until the socket's first skb after it reaches "
               "net:net_dev_queue, during the call or, for data the call only queued (zero "
               "window, cwnd, Nagle), later; includes waits for send-buffer space.", pod=True),),
    default=False,
    opt_in=PER_SEND,
)
