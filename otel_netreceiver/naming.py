"""OTLP metric name → Prometheus name, as the ADOT/vmagent translation does it.

The project's rules, dashboards and docs are written against the Prometheus
names that arrive in AMP; this is the one place that knows the mapping, so
tests can check ``deploy/`` against the catalogue. The rules follow the
OpenTelemetry "Prometheus and OpenMetrics compatibility" specification
(dots become ``_``, a unit suffix is appended, monotonic sums get ``_total``,
annotations in braces are dropped, a gauge of unit ``1`` becomes ``_ratio``).
"""

from __future__ import annotations

import re

from otel_netreceiver.model import Kind, MetricDef

_UNIT_WORDS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "bit": "bits",
    "%": "percent",
    "Hz": "hertz",
    "min": "minutes",
    "h": "hours",
}

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_REPEATED_UNDERSCORE = re.compile(r"__+")


def unit_suffix(unit: str, kind: Kind) -> str:
    """The Prometheus suffix for an OTLP unit ('' when the unit only annotates)."""
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if kind is Kind.GAUGE else ""
    if "/" in unit:
        num, _, den = unit.partition("/")
        per = _UNIT_WORDS.get(den, den)
        per = {"seconds": "second", "minutes": "minute", "hours": "hour"}.get(per, per)
        return f"{_UNIT_WORDS.get(num, num)}_per_{per}" if num else f"per_{per}"
    return _UNIT_WORDS.get(unit, unit)


def sanitize(name: str) -> str:
    """Replace characters Prometheus does not allow in names and label names."""
    cleaned = _REPEATED_UNDERSCORE.sub("_", _INVALID.sub("_", name))
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


def prometheus_name(metric: MetricDef) -> str:
    """The base Prometheus name (without ``_bucket``/``_sum``/``_count``)."""
    name = sanitize(metric.name)
    suffix = unit_suffix(metric.unit, metric.kind)
    if suffix and not name.endswith(f"_{suffix}"):
        name = f"{name}_{suffix}"
    if metric.kind is Kind.COUNTER and not name.endswith("_total"):
        name = f"{name}_total"
    return name


def prometheus_series_names(metric: MetricDef) -> tuple[str, ...]:
    """Every series name a metric produces in Prometheus."""
    base = prometheus_name(metric)
    if metric.kind is Kind.HISTOGRAM:
        return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
    return (base,)
