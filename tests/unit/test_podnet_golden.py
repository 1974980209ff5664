"""The per-pod path's OTLP output, cycle by cycle, against a checked-in golden file.

Why: the collector, the series store and the wire encoder are tuned for speed
(per-file parses shared between probes, values reused when a file did not
change), and none of that may change what a backend receives. Four cycles over
the recorded trees of tests/data/podnet (see its README): counters that move,
counters that first leave zero (sent with a zero baseline), one that goes down
(an interface recreated: a new start time), an interface that appears quiet,
a namespace that goes and one that comes, a namespace without IPv6 and one
without conntrack, and a last cycle where nothing changed.

Times are normalised to names ("agent start", "cycle N") because the collector
stamps collections with the wall clock. Regenerate (only when an export change is
intended) with ONR_REGENERATE_GOLDEN=1.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.export.otlp_wire import WireEncoder
from otel_netreceiver.k8s.directory import PodMeta
from otel_netreceiver.runtime.store import SeriesStore

DATA = Path(__file__).parent.parent / "data" / "podnet"
GOLDEN = DATA / "golden.json"
CYCLES = ("cycle0", "cycle1", "cycle2", "cycle2")  # the last one: nothing changed
PODS = {
    "3f1c2a7e-5b6d-4e8f-9a0b-1c2d3e4f5a6b": PodMeta("3f1c2a7e-5b6d-4e8f-9a0b-1c2d3e4f5a6b",
                                                    "web-0", "shop"),
    "8d7e6f5a-4b3c-4d2e-8f1a-0b9c8d7e6f5a": PodMeta("8d7e6f5a-4b3c-4d2e-8f1a-0b9c8d7e6f5a",
                                                    "batch-1", "jobs"),
}  # the third pod (cycle 2 only) has no metadata: identified by UID alone


class Directory:
    def get(self, uid: str) -> PodMeta | None:
        return PODS.get(uid)


def _install(cycle: str, root: Path) -> None:
    """Make ``root`` hold this cycle's recorded /proc and cgroup trees (symlinks kept)."""
    for name in ("proc", "cgroup"):
        shutil.rmtree(root / name, ignore_errors=True)
        shutil.copytree(DATA / cycle / name, root / name, symlinks=True)


def _decode(body: bytes, times: dict[int, str]) -> list[dict[str, object]]:
    request = ExportMetricsServiceRequest.FromString(body)
    (resource,) = request.resource_metrics
    (scope,) = resource.scope_metrics
    metrics = []
    for m in scope.metrics:
        kind = m.WhichOneof("data")
        data = getattr(m, kind)
        entry: dict[str, object] = {"name": m.name, "unit": m.unit, "kind": kind}
        if kind == "sum":
            entry["temporality"] = data.aggregation_temporality
            entry["monotonic"] = data.is_monotonic
        entry["points"] = [
            [{a.key: a.value.string_value for a in p.attributes},
             times.get(p.start_time_unix_nano, str(p.start_time_unix_nano)),
             times.get(p.time_unix_nano, str(p.time_unix_nano)),
             getattr(p, p.WhichOneof("value"))]
            for p in data.data_points]
        metrics.append(entry)
    return metrics


def _run(root: Path) -> list[object]:
    config = PodNetConfig(cgroup_root=str(root / "cgroup"))
    collector = PodNetCollector(config, str(root / "proc"), Directory())
    clock = itertools.count(1)
    store = SeriesStore(clock=lambda: next(clock))  # 1 is the store's creation
    encoder = WireEncoder({"service.name": "golden"})
    times, out = {0: "unset", 1: "agent start"}, []
    for index, cycle in enumerate(CYCLES):
        _install(cycle, root)
        collection = collector.collect()
        times[collection.time_unix_nano] = f"cycle {index}"
        store.update(collection)
        snapshot = store.snapshot()
        body = encoder.encode(snapshot)
        store.ack_baselines(snapshot)
        out.append({"errors": list(collection.errors), "suppressed": store.suppressed(),
                    "metrics": _decode(body, times)})
    return out


def test_otlp_output_over_recorded_cycles_matches_the_golden_file(tmp_path: Path) -> None:
    got = _run(tmp_path)
    if os.environ.get("ONR_REGENERATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g["errors"] == w["errors"], f"cycle {index}"
        assert g["suppressed"] == w["suppressed"], f"cycle {index}"
        assert [m["name"] for m in g["metrics"]] == [m["name"] for m in w["metrics"]]
        for gm, wm in zip(g["metrics"], w["metrics"], strict=True):
            assert gm == wm, f"cycle {index}, metric {gm['name']}"


def test_the_recorded_cycles_exercise_what_the_golden_file_guards() -> None:
    """The golden file holds baselines, a reset, a new namespace and a gone one."""
    cycles = json.loads(GOLDEN.read_text())
    points = [[(m["name"], p) for m in c["metrics"] for p in m["points"]] for c in cycles]
    starts = {p[1] for c in points for _, p in c}
    assert {"agent start", "cycle 1", "cycle 2"} <= starts  # baseline start, reset, newcomer
    inodes = [{p[0].get("netns.inode") for _, p in c} for c in points]
    assert "4026532103" in inodes[1] and "4026532103" not in inodes[2]  # gone
    assert "4026532104" not in inodes[1] and "4026532104" in inodes[2]  # came
    assert any(c["suppressed"] for c in cycles)
    assert points[2] != points[1] and [p for _, p in points[3]] != []
