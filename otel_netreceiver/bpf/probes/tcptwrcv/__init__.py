"""tcptwrcv: segments that reached a TIME_WAIT socket (skb:kfree_skb with a TIME_WAIT
rx_sk), per pod."""

from __future__ import annotations

from typing import TYPE_CHECKING

from otel_netreceiver.bpf.probe import MetricRow, Probe
from otel_netreceiver.bpf.programs import Attach, ProbeSpec, StructSpec
from otel_netreceiver.bpf.readers import per_pod_counts
from otel_netreceiver.model import Kind, Point

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps

METRIC = "netreceiver.pod.tcp.timewait_segments"


def read(maps: ProbeMaps) -> list[Point]:
    return per_pod_counts(METRIC, maps.netns_items("tw_packets", ("netns",)), maps.labels)


PROBE = Probe(
    "tcptwrcv",
    ProbeSpec("tcptwrcv", "counting.c", (Attach("skb", "kfree_skb", "on_tw_drop"),),
              (StructSpec("ARGS_STRUCT", "skb", "kfree_skb", "kfree_skb_args", ("rx_sk",)),),
              package=__name__),
    read,
    (MetricRow(METRIC, Kind.COUNTER, "{segment}", (),
               "TCP segments that reached a TIME_WAIT socket and were discarded after its "
               "answer (skb:kfree_skb with a TIME_WAIT rx_sk; SYNs a listener takes over are "
               "not counted; probe tcptwrcv).", pod=True),),
    default=True,
)
