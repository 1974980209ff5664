"""A readable summary of what the agent sees, for a person at a terminal.

This is the main job on a developer's machine: no backend, just the node's numbers. Each
summary shows what changed since the previous one, as rates, one row per pod (the rows of
``top``, otel_netreceiver/top/rows.py): the non-zero ``top`` columns on one line, the
busiest other series that moved on a second, nothing for a pod that did not move. Most
kernel counters sit at zero most of the time (docs/background.md, "Per-pod kernel
counters"), so the quiet series are one line of counts; every cumulative value is
``exporters.console.totals`` away, or Enter on the agent's terminal (``print_totals``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import TextIO

from otel_netreceiver.export.base import ExportResult
from otel_netreceiver.model import Attributes, HistogramValue, Kind, ProbeStatus, Snapshot
from otel_netreceiver.naming import prometheus_name
from otel_netreceiver.top.rows import NODE_ROW, TopRow, TopView, fmt, top_view

WIDTH = 120  # a summary line is cut here: one pod, one or two lines


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


def _row_label(row: TopRow) -> str:
    ident = row.id
    return f"{ident.namespace}/{ident.name}" if ident.kind == "pod" and ident.namespace \
        else ident.name


def _cut(text: str, more: int = 0) -> str:
    tail = f" (+{more})" if more else ""
    if len(text) + len(tail) <= WIDTH:
        return text + tail
    return text[:WIDTH - len(tail) - 1] + "…" + tail


def row_lines(row: TopRow, view: TopView) -> list[str]:
    """One pod: its non-zero columns, then the busiest series that moved; none if idle."""
    if not row.details and not row.findings:
        return []
    cells = []
    for column in view.columns:
        value = row.value(column.key)
        if value:
            top = dict(row.tops).get(column.key)
            cells.append(f"{column.title} {fmt(value)}" + (f" ({top})" if top else ""))
    quiet = "(other series moved)" if row.details else "(nothing moved)"
    lines = [_cut(f"  {_row_label(row):<28} " + "  ".join(cells or [quiet]))]
    if row.findings:
        lines.append(_cut("      findings: " + ", ".join(v for _, v in row.findings)))
    moved = [f"{rate.short} {fmt(rate.per_second)}/s" for rate in row.details]
    shown = []
    for text in moved:  # as many as fit on one line
        if len("      moved: " + ", ".join([*shown, text])) > WIDTH - 8:
            break
        shown.append(text)
    if shown:
        lines.append("      moved: " + ", ".join(shown) + (f" (+{len(moved) - len(shown)})"
                                                          if len(moved) > len(shown) else ""))
    return lines


def quiet_line(snapshot: Snapshot, view: TopView) -> str:
    """The quiet-series bookkeeping, folded into one line."""
    held = snapshot.find("netreceiver.series.suppressed")
    quiet = sum(int(p.value) for p in held.points) if held else 0  # type: ignore[arg-type]
    rows = [r for r in view.rows if r.id != NODE_ROW]
    idle = sum(1 for r in rows if not r.details and not r.findings)
    return (f"  quiet: {idle} of {len(rows)} namespaces did not move; {quiet:,} per-pod counters "
            "never left zero (held back until they do)")


def format_summary(previous: Snapshot, snapshot: Snapshot) -> list[str]:
    """Rates since ``previous``, grouped by pod, busiest first; only what moved."""
    view = top_view(previous, snapshot)
    lines = [f"  rates over the last {view.interval_s:.3g}s:"]
    ranked = sorted(view.rows, key=lambda r: (r.id != NODE_ROW,
                                              -sum(d.per_second for d in r.details)))
    for row in ranked:
        lines += row_lines(row, view)
    return [*lines, quiet_line(snapshot, view)]


def _stamp(snapshot: Snapshot) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snapshot.time_unix_nano / 1e9))


class ConsoleExporter:
    """Prints a summary every export interval: rates since the previous one by pod, and
    with ``totals`` every series' cumulative value as well. ``print_totals`` prints those
    values once, at any moment (``keys``: the agent reads Enter from its terminal)."""

    name = "console"

    def __init__(self, node: str, show_zero: bool = False, stream: TextIO | None = None,
                 probes: Callable[[], Iterable[ProbeStatus]] | None = None,
                 totals: bool = False, keys: bool = False) -> None:
        self._node, self._show_zero, self._totals = node, show_zero, totals
        self._stream = stream or sys.stdout
        self._previous: Snapshot | None = None
        self._probes = probes
        self._keys = keys
        # the export thread and the terminal's reader print: one block at a time
        self._lock = threading.Lock()

    def print_totals(self) -> bool:
        """Every cumulative value of the latest summary's snapshot, now: the totals a
        keypress away without waiting for the next interval. False before any summary."""
        with self._lock:
            snapshot = self._previous
            if snapshot is None:
                lines = ["  no summary yet: the totals come with the first one"]
            else:
                lines = [f"── totals on {self._node} at {_stamp(snapshot)} ──",
                         *format_snapshot(snapshot, None, self._show_zero)]
            try:
                print("\n".join(lines), file=self._stream, flush=True)
            except OSError:
                return False
        return snapshot is not None

    def export(self, snapshot: Snapshot) -> ExportResult:
        with self._lock:
            return self._export(snapshot)

    def _export(self, snapshot: Snapshot) -> ExportResult:
        lines = [f"── otel-netreceiver on {self._node} at {_stamp(snapshot)} ──"]
        previous, self._previous = self._previous, snapshot
        if previous is None:
            if self._probes is not None:
                lines += ["  collectors:", *format_probes(self._probes())]
            every = "press Enter, or exporters.console.totals" if self._keys \
                else "exporters.console.totals"
            lines.append(f"  {snapshot.point_count():,} series; rates from the next summary "
                         f"on (all values: {every})")
        elif snapshot.time_unix_nano > previous.time_unix_nano:
            lines += format_summary(previous, snapshot)
        if self._totals:
            lines += ["  totals:", *format_snapshot(snapshot, snapshot_values(previous)
                                                    if previous else None, self._show_zero)]
        try:
            print("\n".join(lines), file=self._stream, flush=True)
        except OSError as exc:
            return ExportResult(False, error=f"console: {exc}")
        return ExportResult(True, snapshot.point_count())

    def shutdown(self) -> None:
        pass
