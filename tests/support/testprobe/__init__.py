"""testprobe: getppid() calls, node wide. Exists only in the copy of the package that
tests/integration/test_adding_a_probe.py makes, registered as docs/architecture.md's
"Adding a probe" says."""

from __future__ import annotations

from typing import TYPE_CHECKING

from otel_netreceiver.bpf.maps import total
from otel_netreceiver.bpf.probe import MetricRow, Probe
from otel_netreceiver.bpf.programs import Attach, ProbeSpec
from otel_netreceiver.bpf.readers import definition
from otel_netreceiver.model import Kind, Point

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps

METRIC = "netreceiver.test.getppid.calls"


def read(maps: ProbeMaps) -> list[Point]:
    return [Point(definition(METRIC), (), sum(total(v) for _, v in maps.table("calls").items()))]


PROBE = Probe(
    "testprobe",
    ProbeSpec("testprobe", "counting.c", (Attach("syscalls", "sys_enter_getppid", "on_getppid"),),
              needs_btf=False, package=__name__),
    read,
    (MetricRow(METRIC, Kind.COUNTER, "{call}", (), "getppid() calls (probe testprobe).",
               pod=False),),
    default=False,
    opt_in="exists only in tests",
)
