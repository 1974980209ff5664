"""Probe tcprtt: RTT and its variation over a namespace's established TCP sockets.

Read through sock_diag (otel_netreceiver/sockdiag): one netlink socket per namespace per
cycle and one dump of its established sockets, IPv4 and IPv6, with their tcp_info. Like
tcpqueues, the kernel walks the node's whole established hash for each dump
(net/ipv4/inet_diag.c: inet_diag_dump_icsk skips other namespaces' sockets one by one),
but once instead of twice and without formatting text (BENCHMARKS.md, "TCP RTT per
pod"). Opt-in: it needs CAP_SYS_ADMIN for setns. Per pod it exports a few gauges, never an address.
"""

from __future__ import annotations

import errno

from otel_netreceiver.catalogue import metric
from otel_netreceiver.model import Attributes, Point
from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.sockdiag.netlink import established_rtts
from otel_netreceiver.sockdiag.tcpinfo import DiagError, RttSummary, summarize

_GONE = (errno.ENOENT, errno.ESRCH, errno.ENXIO)


def _with(base: Attributes, statistic: str) -> Attributes:
    return tuple(sorted((*base, ("tcp.rtt.statistic", statistic))))


def rtt_points(summary: RttSummary, attributes: Attributes) -> list[Point]:
    """The summary as points; a namespace without an established socket exports only the
    count (a 0 s RTT would read as a perfect path)."""
    points = [Point(metric("netreceiver.tcp.rtt.sockets"), attributes, summary.sockets)]
    if not summary.sockets:
        return points
    rtt, var = metric("netreceiver.tcp.rtt"), metric("netreceiver.tcp.rtt.variation")
    return [
        *points,
        Point(rtt, _with(attributes, "mean"), summary.srtt_mean),
        Point(rtt, _with(attributes, "max"), summary.srtt_max),
        Point(rtt, _with(attributes, "min"), summary.min_rtt_min),
        Point(var, _with(attributes, "mean"), summary.rttvar_mean),
        Point(var, _with(attributes, "max"), summary.rttvar_max)]


def tcprtt(target) -> list[Point]:  # type: ignore[no-untyped-def]  # probes.Target
    """The probe: ``target`` is a podnet Target (proc_root, pid, attributes)."""
    source = f"{target.pid}/ns/net"
    try:
        sockets = established_rtts(f"{target.proc_root}/{source}")
    except DiagError as exc:
        raise ParseError(f"{source} sock_diag", 0, str(exc)) from exc
    except OSError as exc:
        if exc.errno in _GONE:
            return []  # the process exited: the other probes drop the namespace this cycle
        # EPERM: setns needs CAP_SYS_ADMIN; reported as the probe's error, once per cycle
        raise ParseError(f"{source} sock_diag", 0, f"{exc} (probe tcprtt needs "
                         "CAP_SYS_ADMIN for setns)") from exc
    return rtt_points(summarize(sockets), target.attributes)
