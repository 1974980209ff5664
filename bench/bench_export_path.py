"""Cost per point of the agent's export path against the OpenTelemetry SDK's, same process.

The agent's path: Collection → SeriesStore.update → snapshot → OTLP wire encoding → bytes.
The baseline: the SDK's observable counters (one callback per metric reporting every
attribute set) → InMemoryMetricReader.collect → the OTLP exporter's encode_metrics → bytes.
Both produce a cumulative OTLP request with the same points; CPU time is thread time.

    python bench/bench_export_path.py [--metrics 100] [--pods 200] [--cycles 5]
"""

from __future__ import annotations

import argparse
import time

from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.model import Collection, Kind, MetricDef, Point, attrs
from otel_netreceiver.runtime.store import SeriesStore


def _workload(metrics: int, pods: int) -> tuple[list[MetricDef], list[tuple]]:
    defs = [MetricDef(f"bench.metric_{i}", Kind.COUNTER, "{packet}", "bench")
            for i in range(metrics)]
    pod_attrs = [attrs({"k8s.pod.name": f"pod-{p}", "k8s.namespace.name": "default",
                        "k8s.pod.uid": f"uid-{p:06d}"}) for p in range(pods)]
    return defs, pod_attrs


def agent_path(defs, pod_attrs, cycles: int) -> tuple[float, int]:
    store = SeriesStore(max_series_per_instrument=10**6)
    encoder = WireEncoder({"service.name": "bench"})
    size, started = 0, time.thread_time()
    for cycle in range(cycles):
        points = [Point(d, a, cycle * 10 + j) for d in defs for j, a in enumerate(pod_attrs)]
        store.update(Collection("bench", tuple(points), time.time_ns()))
        size = len(encoder.encode(store.snapshot()))
    return (time.thread_time() - started) / cycles, size


def sdk_path(defs, pod_attrs, cycles: int) -> tuple[float, int]:
    from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
    from opentelemetry.metrics import Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
    state = {"cycle": 0}
    dict_attrs = [dict(a) for a in pod_attrs]

    def callback_for(_d):  # type: ignore[no-untyped-def]
        return lambda _options: [Observation(state["cycle"] * 10 + j, a)
                                 for j, a in enumerate(dict_attrs)]

    for d in defs:
        meter.create_observable_counter(d.name, [callback_for(d)], unit=d.unit)
    size, started = 0, time.thread_time()
    for cycle in range(cycles):
        state["cycle"] = cycle
        size = len(encode_metrics(reader.get_metrics_data()).SerializeToString())
    return (time.thread_time() - started) / cycles, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    defs, pod_attrs = _workload(args.metrics, args.pods)
    n = len(defs) * len(pod_attrs)
    sdk_s, sdk_bytes = sdk_path(defs, pod_attrs, args.cycles)
    ours_s, our_bytes = agent_path(defs, pod_attrs, args.cycles)
    print(f"points per cycle: {n} ({args.metrics} counters x {args.pods} attribute sets)")
    print(f"baseline  OTel SDK observable counters + encode: {sdk_s * 1e3:8.1f} ms/cycle "
          f"{sdk_s / n * 1e6:6.2f} us/point  {sdk_bytes:,} bytes")
    print(f"agent     store + snapshot + OTLP encode:        {ours_s * 1e3:8.1f} ms/cycle "
          f"{ours_s / n * 1e6:6.2f} us/point  {our_bytes:,} bytes")
    print(f"ratio     baseline / agent: {sdk_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
