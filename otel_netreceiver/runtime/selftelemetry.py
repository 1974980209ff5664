"""The agent's own health as ordinary series.

Watch the watcher's volume: docs/background.md, "Series that stop".

Built as a collector over the runtime's counters so it flows through the same
store and exporters as everything else.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from otel_netreceiver.catalogue import metric
from otel_netreceiver.model import Collection, Point, ProbeStatus, attrs
from otel_netreceiver.runtime.scheduler import RunnerStats


@dataclass
class ExporterStats:
    failures: int = 0
    points: int = 0
    encoded_bytes: int = 0
    last_error: str = ""


@dataclass
class RuntimeCounters:
    """Everything self-telemetry reports, filled by the runtime as it goes."""

    runners: Callable[[], Mapping[str, RunnerStats]]
    exporters: dict[str, ExporterStats] = field(default_factory=dict)
    series_exported: dict[str, int] = field(default_factory=dict)
    dropped: Callable[[], Mapping[str, int]] = dict
    suppressed: Callable[[], Mapping[str, int]] = dict
    reloads: dict[str, int] = field(default_factory=lambda: {"applied": 0, "rejected": 0})
    k8s: Callable[[], tuple[int, int, int] | None] = lambda: None  # pods, lists, errors
    nodeapi: Callable[[], Mapping[str, int]] = dict  # requests by outcome
    nodeapi_dns: Callable[[], Mapping[str, int]] = dict  # recent DNS events let go, by reason
    history: Callable[[], tuple[int, int] | None] = lambda: None  # series, samples
    available: Callable[[], Mapping[str, bool]] = dict  # probes() when collectors started
    export_crashes: int = 0  # export cycles that raised (an exporter broke its contract)


def rss_bytes(proc_root: str) -> int:
    """Resident set size from /proc/self/statm (pages times the page size)."""
    try:
        fields = Path(proc_root, "self", "statm").read_text().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


class SelfCollector:
    name = "self"

    def __init__(self, counters: RuntimeCounters, proc_root: str) -> None:
        self._c, self._proc_root = counters, proc_root

    def collect(self) -> Collection:
        points: list[Point] = []
        add = points.append
        for name, st in self._c.runners().items():
            a = attrs(collector=name)
            add(Point(metric("netreceiver.collector.cycles"), a, st.cycles))
            add(Point(metric("netreceiver.collector.errors"), a, st.errors))
            add(Point(metric("netreceiver.collector.duration"), a, st.last_duration))
            add(Point(metric("netreceiver.collector.cpu.time"), a, st.cpu_seconds))
            add(Point(metric("netreceiver.collector.restarts"), a, st.restarts))
        for name, ex in self._c.exporters.items():
            a = attrs(exporter=name)
            add(Point(metric("netreceiver.export.failures"), a, ex.failures))
            add(Point(metric("netreceiver.export.points"), a, ex.points))
            add(Point(metric("netreceiver.export.bytes"), a, ex.encoded_bytes))
        add(Point(metric("netreceiver.export.crashes"), (), self._c.export_crashes))
        for name, ok in self._c.available().items():
            add(Point(metric("netreceiver.collector.available"), attrs(collector=name), int(ok)))
        for inst, n in self._c.series_exported.items():
            add(Point(metric("netreceiver.series.exported"), attrs(instrument=inst), n))
        for inst, n in self._c.dropped().items():
            add(Point(metric("netreceiver.series.dropped"), attrs(instrument=inst), n))
        for inst, n in self._c.suppressed().items():
            add(Point(metric("netreceiver.series.suppressed"), attrs(instrument=inst), n))
        for result, n in self._c.reloads.items():
            add(Point(metric("netreceiver.config.reloads"), attrs(result=result), n))
        k8s = self._c.k8s()
        if k8s is not None:
            add(Point(metric("netreceiver.k8s.pods"), (), k8s[0]))
            add(Point(metric("netreceiver.k8s.lists"), (), k8s[1]))
            add(Point(metric("netreceiver.k8s.errors"), (), k8s[2]))
        for outcome, n in self._c.nodeapi().items():
            add(Point(metric("netreceiver.nodeapi.requests"), attrs(outcome=outcome), n))
        for reason, n in self._c.nodeapi_dns().items():
            add(Point(metric("netreceiver.nodeapi.dns_events.dropped"), attrs(reason=reason), n))
        history = self._c.history()
        if history is not None:
            add(Point(metric("netreceiver.history.series"), (), history[0]))
            add(Point(metric("netreceiver.history.samples"), (), history[1]))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        add(Point(metric("netreceiver.process.cpu.time"), (), usage.ru_utime + usage.ru_stime))
        add(Point(metric("netreceiver.process.memory.rss"), (), rss_bytes(self._proc_root)))
        return Collection.of(self.name, points, time.time_ns())

    def probe(self) -> ProbeStatus:
        return ProbeStatus(self.name, True, "agent self-telemetry")

    def close(self) -> None:
        pass
