"""A readable summary of what the agent sees, for a person at a terminal.

This is the main job on a developer's machine: no backend, just the node's
numbers with what changed since the last print. Zero series are folded into
a count, because most kernel counters sit at zero (docs/background.md,
"Per-pod kernel counters").
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import TextIO

from otel_netreceiver.export.base import ExportResult
from otel_netreceiver.model import Attributes, HistogramValue, Kind, ProbeStatus, Snapshot
from otel_netreceiver.naming import prometheus_name


def _fmt_attrs(attributes: Attributes) -> str:
    return " ".join(f"{k}={v}" for k, v in attributes) or "(node)"


def _fmt_value(value: object) -> str:
    if isinstance(value, HistogramValue):
        mean = value.sum / value.count if value.count else 0.0
        return f"count={value.count} mean={mean:.6g}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _is_zero(value: object) -> bool:
    return value == 0 or (isinstance(value, HistogramValue) and value.count == 0)


def format_probes(statuses: Iterable[ProbeStatus]) -> list[str]:
    lines = []
    for status in statuses:
        state = "active" if status.active else "unavailable"
        lines.append(f"  {status.name:<10} {state:<12} {status.reason}")
    return lines


def format_snapshot(snapshot: Snapshot, previous: dict | None = None,
                    show_zero: bool = False) -> list[str]:
    """Lines for a snapshot; counters show their change since ``previous``."""
    lines: list[str] = []
    # the node's data first, the agent's own telemetry last
    for series in sorted(snapshot.metrics, key=lambda s: (s.metric.source == "self",
                                                          s.metric.name)):
        shown, hidden = [], 0
        for point in series.points:
            if _is_zero(point.value) and not show_zero:
                hidden += 1
                continue
            text = f"    {_fmt_attrs(point.attributes):<60} {_fmt_value(point.value):>16}"
            key = (series.metric.name, point.attributes)
            old = (previous or {}).get(key)
            if series.metric.kind is Kind.COUNTER and isinstance(old, (int, float)):
                text += f"  (+{_fmt_value(point.value - old)})"  # type: ignore[operator]
            shown.append(text)
        unit = f" [{series.metric.unit}]" if series.metric.unit else ""
        head = f"  {series.metric.name}{unit}"
        if hidden:
            head += f"  ({hidden} series at zero not shown)"
        lines.append(head)
        lines.extend(shown)
    return lines


def snapshot_values(snapshot: Snapshot) -> dict:
    return {(s.metric.name, p.attributes): p.value for s in snapshot.metrics for p in s.points}


def snapshot_json(snapshot: Snapshot, resource: dict[str, str],
                  probes: Iterable[ProbeStatus]) -> str:
    """One collection as JSON: resource, capability report, and every series."""
    series = [
        {"metric": s.metric.name, "prometheus_name": prometheus_name(s.metric),
         "kind": s.metric.kind.value, "unit": s.metric.unit,
         "attributes": dict(p.attributes),
         "value": asdict(p.value) if isinstance(p.value, HistogramValue) else p.value}
        for s in snapshot.metrics for p in s.points
    ]
    return json.dumps({"time_unix_nano": snapshot.time_unix_nano, "resource": resource,
                       "probes": [{"name": p.name, "active": p.active, "reason": p.reason}
                                  for p in probes],
                       "series": series}, indent=2)


class ConsoleExporter:
    """Prints a summary every export interval."""

    name = "console"

    def __init__(self, node: str, show_zero: bool = False, stream: TextIO | None = None,
                 probes: Callable[[], Iterable[ProbeStatus]] | None = None) -> None:
        self._node, self._show_zero = node, show_zero
        self._stream = stream or sys.stdout
        self._previous: dict | None = None
        self._probes = probes

    def export(self, snapshot: Snapshot) -> ExportResult:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snapshot.time_unix_nano / 1e9))
        lines = [f"── otel-netreceiver on {self._node} at {stamp} ──"]
        if self._previous is None and self._probes is not None:
            lines += ["  collectors:", *format_probes(self._probes()), "  series:"]
        lines += format_snapshot(snapshot, self._previous, self._show_zero)
        self._previous = snapshot_values(snapshot)
        try:
            print("\n".join(lines), file=self._stream, flush=True)
        except OSError as exc:
            return ExportResult(False, error=f"console: {exc}")
        return ExportResult(True, snapshot.point_count())

    def shutdown(self) -> None:
        pass
