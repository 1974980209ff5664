"""Load a real Prometheus with series of a chosen shape in the past (``promtool`` backfill).

Series are written as OpenMetrics text with timestamps, turned into TSDB blocks by
``promtool tsdb create-blocks-from openmetrics`` inside the data directory, and then
Prometheus is started on that directory: its query API serves the shapes as if they
had been scraped. Nothing here depends on pytest.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from otel_netreceiver.catalogue import metric
from otel_netreceiver.model import Point, attrs
from otel_netreceiver.naming import prometheus_name, sanitize
from tests.support.tools import require_tool

Shape = Callable[[float], float]  # value at t seconds after the period's start


@dataclass(frozen=True)
class PromSeries:
    """A series as it is stored in Prometheus: full name, labels, a value over time."""

    name: str
    labels: dict[str, str]
    shape: Shape


@dataclass(frozen=True)
class AgentSeries:
    """One of the agent's series: OTLP name and attributes, plus the resource labels that
    ADOT/vmagent copy onto it (k8s_node_name, host_name)."""

    metric: str
    attributes: dict[str, str]
    shape: Shape
    resource: dict[str, str] = field(default_factory=dict)

    def prom(self) -> PromSeries:
        labels = {sanitize(k): v for k, v in self.attributes.items()}
        return PromSeries(prometheus_name(metric(self.metric)), {**labels, **self.resource},
                          self.shape)

    def point(self, t: float) -> Point:
        return Point(metric(self.metric), attrs(self.attributes), self.shape(t))


def _labels(labels: dict[str, str]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in sorted(labels.items())) + "}"


def openmetrics(periods: Iterable[tuple[float, Sequence[PromSeries]]], seconds: float,
                step: float) -> str:
    """OpenMetrics text: every series sampled each ``step`` over ``seconds`` from each start.

    Samples of one metric name are contiguous and each series' samples are in time order,
    as the OpenMetrics parser of promtool requires.
    """
    by_name: dict[str, list[str]] = {}
    for start, series in periods:
        for s in series:
            lines = by_name.setdefault(s.name, [])
            label_text = _labels(s.labels)
            t = 0.0
            while t <= seconds:
                lines.append(f"{s.name}{label_text} {s.shape(t):.17g} {start + t:.3f}")
                t += step
    out = [line for name in sorted(by_name) for line in by_name[name]]
    return "\n".join([*out, "# EOF"]) + "\n"


def backfill(tsdb: Path, text: str) -> None:
    """Create blocks from ``text`` in ``tsdb`` (Prometheus' --storage.tsdb.path)."""
    tsdb.mkdir(parents=True, exist_ok=True)
    source = tsdb.parent / "backfill.om"
    source.write_text(text)
    done = subprocess.run([require_tool("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                           "--quiet", str(source), str(tsdb)],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({done.returncode}): {done.stderr[-2000:]}")


def histogram(name: str, labels: dict[str, str], bounds: Sequence[float],
              rates: Sequence[float]) -> list[PromSeries]:
    """Cumulative ``_bucket`` counters observing ``rates[i]`` per second into bucket i
    (the last rate is the +Inf overflow), like a real histogram scraped over time."""
    les = [*(f"{b:g}" for b in bounds), "+Inf"]
    out = []
    for i, le in enumerate(les):
        per_second = sum(rates[: i + 1])
        out.append(PromSeries(f"{name}_bucket", {**labels, "le": le},
                              lambda t, r=per_second: r * t))
    return out
