"""kernellatency: time through the kernel's network stack, per pod and direction (opt-in)."""

from __future__ import annotations

from otel_netreceiver.bpf.probe import MetricRow, Probe
from otel_netreceiver.bpf.probes.socketlatency import (
    PER_SEND,
    QUEUE,
    READY,
    SEND,
    read_latency,
    send_enter,
)
from otel_netreceiver.bpf.programs import Attach, ProbeSpec, StructSpec
from otel_netreceiver.model import Kind

METRIC = "netreceiver.pod.kernel.latency"

PROBE = Probe(
    "kernellatency",
    ProbeSpec("kernellatency", "counting.c",
              (Attach("net", "netif_receive_skb", "kl_receive"),
               Attach("sock", "sk_data_ready", "kl_data_ready"),
               Attach("irq", "softirq_exit", "kl_softirq_exit"), *send_enter("kl_"),
               Attach("net", "net_dev_queue", "kl_queue"),
               Attach("sock", "sock_send_length", "kl_send_length")),
              (StructSpec("RX_ARGS_STRUCT", "net", "netif_receive_skb", "rx_args",
                          ("skbaddr",)), READY, QUEUE, SEND),
              headers=("podlatency.h",), package=__name__),
    read_latency(METRIC),
    (MetricRow(METRIC, Kind.HISTOGRAM, "s", ("network.io.direction",),
               "Time through the kernel's network stack (probe kernellatency). receive: "
               "net:netif_receive_skb to sock:sk_data_ready within one NET_RX softirq run on "
               "one CPU. transmit: sendto/sendmsg syscall entry to the first net:net_dev_queue "
               "of the sending thread's socket skb (data sent synchronously by the call).",
               pod=True),),
    default=False,
    opt_in=PER_SEND,
)
