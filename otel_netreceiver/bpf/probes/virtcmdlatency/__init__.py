"""virtcmdlatency: virtio-net control-queue command latency by command class (fentry/fexit
on virtnet_send_command_reply or virtnet_send_command; no tracepoints)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

from otel_netreceiver.bpf.probe import MetricRow, Probe
from otel_netreceiver.bpf.programs import ProbeSpec
from otel_netreceiver.bpf.readers import definition, histogram
from otel_netreceiver.model import Kind, Point, attrs

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps

METRIC = "netreceiver.virtio.ctrl.latency"
# include/uapi/linux/virtio_net.h, VIRTIO_NET_CTRL_* classes
VIRTIO_CTRL_CLASSES = {0: "rx", 1: "mac", 2: "vlan", 3: "announce", 4: "mq",
                       5: "guest_offloads", 6: "notf_coal", 7: "guest_hdr", 8: "stats"}


def virtcmd_points(by_class: Mapping[int, Mapping[int, int]],
                   sums: Mapping[int, int]) -> list[Point]:
    metric = definition(METRIC)
    return [Point(metric, attrs({"virtio.ctrl.class": VIRTIO_CTRL_CLASSES.get(c, str(c))}),
                  histogram(slots, sums.get(c, 0)))
            for c, slots in by_class.items()]


def read(maps: ProbeMaps) -> list[Point]:
    slots: defaultdict[int, dict[int, int]] = defaultdict(dict)
    for key, value in maps.table("cmd_latency").items():
        slots[getattr(key, "class")][key.slot] = int(value.value)
    sums = {getattr(k, "class"): int(v.value) for k, v in maps.table("cmd_sum").items()}
    return virtcmd_points(slots, sums)


PROBE = Probe(
    "virtcmdlatency",
    # no tracepoints: bcc attaches its KFUNC_PROBE / KRETFUNC_PROBE programs when it loads
    ProbeSpec("virtcmdlatency", "counting.c", (),
              functions=("virtnet_send_command_reply", "virtnet_send_command"),
              package=__name__),
    read,
    (MetricRow(METRIC, Kind.HISTOGRAM, "s", ("virtio.ctrl.class",),
               "virtio-net control-queue command latency (fentry/fexit on "
               "virtnet_send_command_reply), by command class (rx, mac, vlan, announce, mq, "
               "guest_offloads, ...; probe virtcmdlatency).", pod=False),),
    default=True,
)
