"""One function per probe: read a namespace's file through its pid, parse it, return points
(or, for snmp, netstat and netdev, the per-line blocks of collectors/podnet/memo.py).

Each probe reads ``<proc_root>/<pid>/net/<file>`` (the namespace of that pid, no
setns needed). A file that does not exist on this kernel (snmp6 without IPv6,
nf_conntrack not loaded) yields nothing; a process that exits mid-read raises
Gone, which drops that namespace for this cycle without an error.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from otel_netreceiver.catalogue import CONNTRACK_STATS, metric
from otel_netreceiver.catalogue_kernel import NETNS_FIELDS, metric_name
from otel_netreceiver.collectors.podnet.memo import MibMemo, NetnsMemo
from otel_netreceiver.collectors.podnet.tcprtt import tcprtt
from otel_netreceiver.model import Attributes, Block, MetricDef, Point
from otel_netreceiver.procfs.snmp6 import parse_snmp6
from otel_netreceiver.procfs.sockstat import parse_sockstat
from otel_netreceiver.procfs.stat_tables import parse_conntrack_stat
from otel_netreceiver.procfs.tcp_sockets import TcpSummary, summarize_tcp


class Gone(Exception):
    """The namespace's process exited while being read."""


@dataclass(frozen=True, slots=True)
class Target:
    """One namespace to read this cycle."""

    proc_root: str
    pid: int
    pids: tuple[int, ...]
    attributes: Attributes
    cpu_stat: str | None  # path of the pod's cgroup cpu.stat, when known
    texts: dict[str, str | None] = field(default_factory=dict)  # files read this cycle
    memo: NetnsMemo | None = None  # what the files said last cycle (none: parse afresh)

    def state(self) -> NetnsMemo:
        """The namespace's memo; a throwaway one when the caller keeps none."""
        if self.memo is None:
            object.__setattr__(self, "memo", NetnsMemo(self.attributes))
        return self.memo  # type: ignore[return-value]


def read_net(target: Target, name: str) -> str | None:
    """Text of <pid>/net/<name> (read once per cycle); None if this kernel has no such file."""
    texts = target.texts
    if name not in texts:
        texts[name] = text = _read_net(target, name)
        return text
    return texts[name]


def _read_net(target: Target, name: str) -> str | None:
    """os.open/os.read, as the floor does: buffered file objects cost more than the read."""
    path = f"{target.proc_root}/{target.pid}/net/{name}"
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            chunks = [os.read(fd, 65536)]
            while chunks[-1]:
                chunks.append(os.read(fd, 65536))
        finally:
            os.close(fd)
        return b"".join(chunks).decode("ascii", "replace")
    except FileNotFoundError:
        if not os.path.exists(f"{target.proc_root}/{target.pid}"):
            raise Gone(path) from None
        return None
    except ProcessLookupError:
        raise Gone(path) from None
    except OSError as exc:
        # fs/proc/proc_net.c seq_open_net()/single_open_net(): ENXIO when maybe_get_net()
        # fails, i.e. the namespace is being torn down while its last process exits
        if exc.errno == errno.ENXIO:
            raise Gone(path) from None
        raise


def _with(base: Attributes, **extra: str) -> Attributes:
    return tuple(sorted((*base, *extra.items())))


def _fields_by_file() -> dict[str, list[tuple[str, str, MetricDef]]]:
    """(section, field, definition) of the catalogue's kernel table, grouped by the file."""
    by_file: dict[str, list[tuple[str, str, MetricDef]]] = {"snmp": [], "netstat": [],
                                                             "snmp6": []}
    for section, name, *_ in NETNS_FIELDS:
        file = ("snmp" if section in ("Tcp", "Udp", "Ip", "Icmp")
                else "snmp6" if section == "Ip6" else "netstat")
        by_file[file].append((section, name, metric(metric_name(section, name))))
    return by_file


_FIELDS = _fields_by_file()


def _snmp_memo(target: Target, file: str) -> MibMemo | None:
    """The namespace's memo of snmp or netstat, brought up to this cycle's text."""
    text = read_net(target, file)
    if text is None:
        return None
    memo = target.state().mib.setdefault(file, MibMemo())
    memo.update(text, f"{target.pid}/net/{file}", _FIELDS[file], target.attributes)
    return memo


def _mib(target: Target, file: str) -> list[Block]:
    memo = _snmp_memo(target, file)
    return [] if memo is None else memo.blocks


def snmp6(target: Target) -> list[Point]:
    file = "snmp6"
    text = read_net(target, file)
    if text is None:
        return []
    flat = parse_snmp6(text, f"{target.pid}/net/{file}")
    return [Point(d, target.attributes, flat[f]) for _, f, d in _FIELDS[file] if f in flat]


def netdev(target: Target) -> list[Block]:
    text = read_net(target, "dev")
    if text is None:
        return []
    return target.state().dev.update(text, f"{target.pid}/net/dev", target.attributes, metric)


def _sockstat_table(target: Target, text: str) -> dict[str, dict[str, int]]:
    source = f"{target.pid}/net/sockstat"
    return target.state().parse("sockstat", text, lambda t: parse_sockstat(t, source))


def sockstat(target: Target) -> list[Point]:
    text = read_net(target, "sockstat")
    if text is None:
        return []
    table = _sockstat_table(target, text)
    definition = metric("netreceiver.sockets.in_use")
    return [Point(definition, _with(target.attributes, **{"network.transport": proto.lower()}),
                  table[proto]["inuse"]) for proto in ("TCP", "UDP", "RAW")
            if "inuse" in table.get(proto, {})]


def conntrack(target: Target) -> list[Point]:
    text = read_net(target, "stat/nf_conntrack")
    if text is None:
        return []
    stats = parse_conntrack_stat(text, f"{target.pid}/net/stat/nf_conntrack")
    stats.setdefault("clash_resolve", stats.get("clashres", 0))  # column name since 5.9
    points = [Point(metric("netreceiver.conntrack.entries"), target.attributes,
                    stats.get("entries", 0))]
    points += [Point(metric(f"netreceiver.conntrack.{s}"), target.attributes, stats[s])
               for s in CONNTRACK_STATS if s in stats]
    return points


def tcpsummary(target: Target) -> list[Point]:
    """Established and TIME_WAIT connections from counters the kernel keeps per namespace.

    Not from /proc/<pid>/net/tcp: reading that walks the node's whole established
    hash table for every namespace (7.9 ms per namespace for tcp+tcp6 on a 24 GiB
    node with 262,144 buckets, measured; BENCHMARKS.md), where snmp's CurrEstab
    (ESTABLISHED + CLOSE_WAIT, RFC 1213) and sockstat's tw (per namespace since
    Linux 6.0, net->ipv4.tcp_death_row) cost nothing extra.
    """
    snmp, sock = _snmp_memo(target, "snmp"), read_net(target, "sockstat")
    estab = None if snmp is None else snmp.value("Tcp", "CurrEstab")
    tw = None if sock is None else _sockstat_table(target, sock).get("TCP", {}).get("tw")
    held = target.state().parsed.get("tcpsummary")
    if held is not None and held[0] == (estab, tw):
        return held[1]  # type: ignore[return-value]  # same values: same Point objects
    conns, a, points = metric("netreceiver.tcp.connections"), target.attributes, []
    if estab is not None:
        points.append(Point(conns, _with(a, **{"tcp.state": "established"}), estab))
    if tw is not None:
        points.append(Point(conns, _with(a, **{"tcp.state": "time_wait"}), tw))
    target.state().parsed["tcpsummary"] = ((estab, tw), points)
    return points


def tcpqueues(target: Target) -> list[Point]:
    """Listening sockets and bytes queued on established ones: walks net/tcp{,6} (costly)."""
    total = TcpSummary()
    for name in ("tcp", "tcp6"):
        text = read_net(target, name)
        if text is not None:
            total = total + summarize_tcp(text, f"{target.pid}/net/{name}")
    conns, queued = metric("netreceiver.tcp.connections"), metric("netreceiver.tcp.queued")
    a = target.attributes
    return [Point(conns, _with(a, **{"tcp.state": "listen"}), total.listen),
            Point(queued, _with(a, **{"network.io.direction": "transmit"}), total.tx_queue_bytes),
            Point(queued, _with(a, **{"network.io.direction": "receive"}), total.rx_queue_bytes)]


def fd(target: Target) -> list[Point]:
    """Open files and sockets of every process in the namespace (costly: off by default)."""
    files = sockets = 0
    for pid in target.pids:
        base = f"{target.proc_root}/{pid}/fd"
        try:
            entries = os.listdir(base)
        except OSError:
            continue  # exited, or a kernel thread
        files += len(entries)
        for entry in entries:
            try:
                sockets += os.readlink(f"{base}/{entry}").startswith("socket:")
            except OSError:
                continue
    return [Point(metric("netreceiver.pod.open_files"), target.attributes, files),
            Point(metric("netreceiver.pod.open_sockets"), target.attributes, sockets)]


def cpu(target: Target) -> list[Point]:
    """CFS throttling of the pod's cgroup (the ACK Net Exporter guide's case 4: ingress
    health checks failing under a CPU limit)."""
    if target.cpu_stat is None:
        return []
    try:
        with open(target.cpu_stat) as handle:
            stat = dict(line.split() for line in handle if line.count(" ") == 1)
    except (OSError, ValueError):
        return []
    throttled_s = (int(stat["throttled_usec"]) / 1e6 if "throttled_usec" in stat
                   else int(stat.get("throttled_time", 0)) / 1e9)  # v2 µs, v1 ns
    a = target.attributes
    return [Point(metric("netreceiver.pod.cpu.periods"), a, int(stat.get("nr_periods", 0))),
            Point(metric("netreceiver.pod.cpu.throttled_periods"), a,
                  int(stat.get("nr_throttled", 0))),
            Point(metric("netreceiver.pod.cpu.throttled_time"), a, throttled_s)]


# Files each probe's output depends on: identical text means identical points, so the
# collector reuses last cycle's points without parsing (most pods are quiet most cycles).
PROBE_FILES: dict[str, tuple[str, ...]] = {
    "netdev": ("dev",), "snmp": ("snmp",), "netstat": ("netstat",), "snmp6": ("snmp6",),
    "sockstat": ("sockstat",), "conntrack": ("stat/nf_conntrack",),
    "tcpsummary": ("snmp", "sockstat"), "tcpqueues": ("tcp", "tcp6"),
}

# Probes whose output is blocks (the collection's ``blocks``), not points.
BLOCK_PROBES = frozenset({"netdev", "snmp", "netstat"})

PROBES: dict[str, Callable[[Target], list]] = {
    "netdev": netdev,
    "snmp": lambda t: _mib(t, "snmp"),
    "netstat": lambda t: _mib(t, "netstat"),
    "snmp6": snmp6,
    "sockstat": sockstat,
    "conntrack": conntrack,
    "tcpsummary": tcpsummary,
    "tcpqueues": tcpqueues,
    "tcprtt": tcprtt,
    "fd": fd,
    "cpu": cpu,
}
