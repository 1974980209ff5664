"""Snapshot → OTLP ``ExportMetricsServiceRequest`` bytes, written directly in protobuf wire format.

Building generated protobuf objects costs ~2.6 µs per point here (measured by
bench/bench_export_path.py); per-pod counters produce tens of thousands of
points per cycle. Protobuf's wire format is simple and the OTLP messages are
fixed (opentelemetry-proto, metrics/v1/metrics.proto), so numbers are written
with one ``struct.pack`` per point and each attribute set is encoded once and
reused while its series lives. The tests parse every byte this module writes
with the generated classes.

Field numbers used (metrics.proto, common.proto, resource.proto):
ExportMetricsServiceRequest.resource_metrics=1; ResourceMetrics.resource=1,
scope_metrics=2; Resource.attributes=1; ScopeMetrics.scope=1, metrics=2;
InstrumentationScope.name=1, version=2; Metric.name=1, description=2, unit=3,
gauge=5, sum=7, histogram=9; Gauge/Sum/Histogram.data_points=1;
Sum.aggregation_temporality=2, is_monotonic=3; Histogram.aggregation_temporality=2;
NumberDataPoint.start_time_unix_nano=2 (fixed64), time_unix_nano=3 (fixed64),
as_double=4 (double), as_int=6 (sfixed64), attributes=7; KeyValue.key=1, value=2;
AnyValue.string_value=1.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from opentelemetry.proto.metrics.v1 import metrics_pb2

from otel_netreceiver import __version__
from otel_netreceiver.model import Attributes, HistogramValue, Kind, MetricSeries, Snapshot

SCOPE_NAME = "otel_netreceiver"
_INT64_MAX = 2**63 - 1
_MIN = -_INT64_MAX  # as before: -2**63 itself goes as a double
_CUMULATIVE = 2  # AGGREGATION_TEMPORALITY_CUMULATIVE
# tag bytes: (field_number << 3) | wire_type; 2 = length-delimited, 1 = 64-bit, 0 = varint
_START_TIME, _TIME, _AS_DOUBLE, _AS_INT, _DP_ATTRS = 0x11, 0x19, 0x21, 0x31, 0x3A
_INT_POINT = struct.Struct("<BQBQBq")
_DOUBLE_POINT = struct.Struct("<BQBQBd")
_GAUGE_INT = struct.Struct("<BQBq")
_GAUGE_DOUBLE = struct.Struct("<BQBd")


def varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (tags here are all below 128: one byte)."""
    return bytes((tag,)) + varint(len(payload)) + payload


def _key_value(key: str, value: str) -> bytes:
    return field(0x0A, key.encode()) + field(0x12, field(0x0A, value.encode()))


def encode_attributes(attributes: Attributes, tag: int = _DP_ATTRS) -> bytes:
    return b"".join(field(tag, _key_value(k, v)) for k, v in attributes)


def _as_float(value: object) -> float:
    """A number that is not a 64-bit int (a float, a bool, a huge int) as a double."""
    return float(value)  # type: ignore[arg-type]


def _held(attributes: Attributes, kind: int) -> tuple[Attributes, bytes]:
    """(attributes, tag + length + attributes) of a sum's (0) or gauge's (1) data point."""
    encoded = encode_attributes(attributes)
    size = len(encoded) + (_INT_POINT.size, _GAUGE_INT.size)[kind]
    return attributes, b"\x0a" + varint(size) + encoded


_Prefixes = tuple[dict[int, tuple[Attributes, bytes]], dict[int, tuple[Attributes, bytes]]]


class WireEncoder:
    """Encodes snapshots; keeps each attribute set's bytes while the series exists.

    A number data point is its attributes and 18 or 27 bytes of numbers (time, start
    time, value: fixed64/double/sfixed64), so its tag, length and attributes are one
    prefix per attribute set and kind of point (sum, gauge), kept while the series
    lives; a point costs one ``struct.pack``. The cache is keyed by the attribute
    tuple's id and holds the tuple, so the id cannot be reused while the entry lives:
    hashing a tuple of string pairs per point cost more than the rest of the point.
    """

    def __init__(self, resource: Mapping[str, str]) -> None:
        resource_msg = encode_attributes(tuple(sorted(resource.items())), 0x0A)
        scope = field(0x0A, SCOPE_NAME.encode()) + field(0x12, __version__.encode())
        self._resource_field = field(0x0A, resource_msg)
        self._scope_field = field(0x0A, scope)
        # per numbers length (sum, gauge): id(attributes) → (attributes, data point prefix)
        self._prefixes: _Prefixes = ({}, {})

    def encode(self, snapshot: Snapshot) -> bytes:
        old, self._prefixes = self._prefixes, ({}, {})
        metrics = [field(0x12, self._metric(series, old)) for series in snapshot.metrics
                   if series.points]
        scope_metrics = field(0x12, self._scope_field + b"".join(metrics))
        return field(0x0A, self._resource_field + scope_metrics)

    def _prefix(self, attributes: Attributes, kind: int, old: _Prefixes) -> bytes:
        """Tag, length and attributes of a data point: ``kind`` 0 a sum's, 1 a gauge's."""
        held = old[kind].get(id(attributes))
        if held is None or held[0] is not attributes:
            held = _held(attributes, kind)
        self._prefixes[kind][id(attributes)] = held
        return held[1]

    def _metric(self, series: MetricSeries, old: _Prefixes) -> bytes:
        m = series.metric
        head = field(0x0A, m.name.encode())
        if m.description:
            head += field(0x12, m.description.encode())
        if m.unit:
            head += field(0x1A, m.unit.encode())
        if m.kind is Kind.HISTOGRAM:
            return head + field(0x4A, self._histogram(series))
        if m.kind is Kind.COUNTER:
            points = self._sum_points(series, old)
            return head + field(0x3A, points + bytes((0x10, _CUMULATIVE, 0x18, 1)))
        return head + field(0x2A, self._gauge_points(series, old))

    def _sum_points(self, series: MetricSeries, old: _Prefixes) -> bytes:
        out: list[bytes] = []
        append, find, keep = out.append, old[0].get, self._prefixes[0]
        pack_int, pack_double = _INT_POINT.pack, _DOUBLE_POINT.pack
        for attributes, start, now, value, baseline in series.points:
            held = find(id(attributes))
            if held is None or held[0] is not attributes:
                held = _held(attributes, 0)
            keep[id(attributes)] = held
            prefix = held[1]
            if baseline:  # the zero the backend needs before a first increment
                append(prefix)
                append(pack_int(_START_TIME, start, _TIME, baseline, _AS_INT, 0))
            append(prefix)
            if (type(value) is int or isinstance(value, int)) and _MIN <= value <= _INT64_MAX:
                append(pack_int(_START_TIME, start, _TIME, now, _AS_INT, value))
            else:
                append(pack_double(_START_TIME, start, _TIME, now, _AS_DOUBLE, _as_float(value)))
        return b"".join(out)

    def _gauge_points(self, series: MetricSeries, old: _Prefixes) -> bytes:
        out: list[bytes] = []
        append, find, keep = out.append, old[1].get, self._prefixes[1]
        for attributes, start, now, value, baseline in series.points:
            held = find(id(attributes))
            if held is None or held[0] is not attributes:
                held = _held(attributes, 1)
            keep[id(attributes)] = held
            prefix = held[1]
            if baseline:  # as in _sum_points: a sum's data point, start time included
                append(self._prefix(attributes, 0, old))
                append(_INT_POINT.pack(_START_TIME, start, _TIME, baseline, _AS_INT, 0))
            append(prefix)
            if (type(value) is int or isinstance(value, int)) and _MIN <= value <= _INT64_MAX:
                append(_GAUGE_INT.pack(_TIME, now, _AS_INT, value))
            else:
                append(_GAUGE_DOUBLE.pack(_TIME, now, _AS_DOUBLE, _as_float(value)))
        return b"".join(out)

    @staticmethod
    def _histogram(series: MetricSeries) -> bytes:
        """Histograms are few (per CPU or interface): the generated classes are fine here."""
        out = []
        for p in series.points:
            value: HistogramValue = p.value  # type: ignore[assignment]
            dp = metrics_pb2.HistogramDataPoint(
                start_time_unix_nano=p.start_time_unix_nano, time_unix_nano=p.time_unix_nano,
                count=value.count, sum=value.sum, explicit_bounds=value.bounds,
                bucket_counts=value.bucket_counts)
            out.append(field(0x0A, encode_attributes(p.attributes, 0x4A) + dp.SerializeToString()))
        return b"".join(out) + bytes((0x10, _CUMULATIVE))
