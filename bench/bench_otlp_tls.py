"""What TLS and mTLS cost one OTLP/HTTP metrics export, against plaintext in the same process.

One snapshot (metrics x pods cumulative points) is exported repeatedly by the agent's
OtlpExporter to a loopback OTLP sink: plain HTTP (the baseline), HTTPS verified by a
test CA, and HTTPS with a client certificate (mTLS). The connection is kept alive
across exports, as in the agent, so the handshake is paid once; the figure is the
exporting thread's CPU time per export (encode, gzip, TLS, request) and wall time.

    python bench/bench_otlp_tls.py [--metrics 100] [--pods 200] [--exports 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from otel_netreceiver.config.schema import OtlpConfig
from otel_netreceiver.export.otlp import OtlpExporter
from otel_netreceiver.model import Collection, Kind, MetricDef, Point, attrs
from otel_netreceiver.runtime.store import SeriesStore
from tests.support.otlp_sink import OtlpHttpSink
from tests.support.tls import make_pki


def _snapshot(metrics: int, pods: int):  # type: ignore[no-untyped-def]
    defs = [MetricDef(f"bench.metric_{i}", Kind.COUNTER, "{packet}", "bench")
            for i in range(metrics)]
    pod_attrs = [attrs({"k8s.pod.name": f"pod-{p}", "k8s.pod.uid": f"uid-{p:06d}"})
                 for p in range(pods)]
    store = SeriesStore(max_series_per_instrument=10**6)
    points = tuple(Point(d, a, j) for d in defs for j, a in enumerate(pod_attrs))
    store.update(Collection("bench", points, time.time_ns()))
    return store.snapshot()


def _run(config: OtlpConfig, snapshot, exports: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    exporter = OtlpExporter(config, {"service.name": "bench"})
    try:
        assert exporter.export(snapshot).ok  # connection (and handshake) before timing
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(exports):
            result = exporter.export(snapshot)
            assert result.ok, result.error
        return (time.thread_time() - cpu) / exports, (time.perf_counter() - wall) / exports
    finally:
        exporter.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--exports", type=int, default=20)
    args = parser.parse_args()
    snapshot = _snapshot(args.metrics, args.pods)
    pki = make_pki(Path(tempfile.mkdtemp(prefix="bench-pki-")))
    client = {"client_certificate": str(pki.client_cert), "client_key": str(pki.client_key)}
    cases = [("plain HTTP (baseline)", None, {}),
             ("HTTPS, test CA", pki.server_context(), {"certificate": str(pki.ca)}),
             ("HTTPS + client cert (mTLS)", pki.server_context(require_client_cert=True),
              {"certificate": str(pki.ca), **client})]
    print(f"points per export: {args.metrics * args.pods}; {args.exports} exports each, gzip")
    baseline = 0.0
    for name, context, tls in cases:
        sink = OtlpHttpSink(tls=context)
        try:
            cpu, wall = _run(OtlpConfig(endpoint=sink.endpoint, **tls), snapshot, args.exports)
        finally:
            sink.close()
        baseline = baseline or cpu
        print(f"{name:28s} cpu {cpu * 1e3:7.2f} ms/export  wall {wall * 1e3:7.2f} ms/export  "
              f"cpu ratio {cpu / baseline:.3f}x")


if __name__ == "__main__":
    main()
