"""deploy/ end to end: the dashboards' and rules' queries against what the agent produced here.

The agent runs on this machine for ~20 s (per-pod, node, eBPF, netdev collectors and the
ENA replay, with a test pod making drops, resets and traffic), exporting OTLP to vmagent,
which remote-writes into a Prometheus loaded with every rule file in deploy/. Beside it a
tiny application instrumented with the SDK (tests/support/sdk_traffic_app.py: DNS lookups answered,
lost, and refused/reset/timed-out sockets, all on loopback) exports through the OTel SDK's
OTLP/HTTP exporter to the same vmagent, labelled from OTEL_RESOURCE_ATTRIBUTES as in a pod.
Then: every dashboard query and every rule expression (Grafana variables substituted) must
execute; each one whose selectors all match series here must return data unless it filters
by a comparison; a selector that matches nothing may only filter on labels its metric
really has (a value that did not occur here, not a typo); every rule must evaluate without
error.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.backends import start_prometheus, start_vmagent
from tests.support.ena_replay import write_growing_recording
from tests.support.pods import create_pod, destroy_pod, kernel_supports_test_pods
from tests.support.promql import metric_names

pytestmark = [pytest.mark.e2e, pytest.mark.root]

ROOT = Path(__file__).parent.parent.parent
RULE_FILES = sorted((ROOT / "deploy/rules").rglob("*.rules.yaml"))
DASHBOARDS = sorted((ROOT / "deploy/grafana").glob("*.json"))
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m",
             "${__rate_interval}": "1m"}
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")
_FILTERS = re.compile(r"(?<![=!<>])(>|<|==|!=)(?!~)|\bbool\b")
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\{([^{}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:\\.|[^"\\])*)"')
SDK_ROUNDS = 9  # ~1.9 s each (a 1 s DNS timeout, a 0.3 s read timeout): the agent's run
SDK_RESOURCE = {"OTEL_SERVICE_NAME": "checkout",
                "OTEL_RESOURCE_ATTRIBUTES": "k8s.pod.name=checkout-e2e,k8s.namespace.name=shop,"
                                            "k8s.node.name=deploy-e2e"}


def _queries() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text()).get("panels", []):
            for target in panel.get("targets") or []:
                if target.get("expr"):
                    found.append((f"{path.name}: {panel.get('title', '?')}", target["expr"]))
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule.get("alert")
                found.append((f"{path.name}: {name}", rule["expr"]))
    return found


def _substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return _VARIABLE.sub(".*", expr)


def _start_sdk_app(workdir: Path, otlp_metrics_url: str) -> subprocess.Popen[str]:
    """The SDK app in its own mount namespace, its resolv.conf naming a silent loopback DNS
    server of its own (a per-test address in 127/8: no other test's port 53)."""
    workdir.mkdir(parents=True, exist_ok=True)
    address = f"127.53.{os.getpid() % 250 + 1}.{os.getpid() // 250 % 250 + 1}"
    resolv = workdir / "resolv.conf"
    resolv.write_text(f"nameserver {address}\noptions timeout:1 attempts:1\n")
    script = ('mount --make-rprivate / && mount --bind "$0" /etc/resolv.conf && '
              'exec "$1" -m tests.support.sdk_traffic_app "$2" "$3" "$4"')
    env = {**os.environ, **SDK_RESOURCE, "OTEL_NETRECEIVER_CORRELATE": "explicit"}
    return subprocess.Popen(["unshare", "--mount", "sh", "-c", script, str(resolv),
                             sys.executable, otlp_metrics_url, address, str(SDK_ROUNDS)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture
def running_agent(tmp_path):
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    prometheus = start_prometheus(tmp_path / "prometheus", rule_files=RULE_FILES,
                                  evaluation_interval="1s")
    vmagent = start_vmagent(tmp_path / "vmagent", remote_write_url=prometheus.remote_write_url)
    recording = tmp_path / "ena.json"
    write_growing_recording(recording, grow="linklocal_allowance_exceeded", start_frame=3,
                            step=10, frames=200)
    pod = create_pod(9, "cgroupfs")
    config = f"""
interval: 1s
jitter: 0
node_name: deploy-e2e
collectors:
  ena: {{replay: "{recording}"}}
  podnet: {{probes: [netdev, snmp, netstat, snmp6, sockstat, conntrack, tcpsummary, tcpqueues,
                     fd, io, cpu]}}
  ebpf: {{probes: [packetloss, tcpreset, tcpretrans, tcptwrcv, net_softirq, netiftxlat]}}
exporters:
  otlp: {{endpoint: "{vmagent.otlp_base_url}"}}
"""
    agent = Agent(load_text(config, "deploy-e2e.yaml"), {}, stream=io.StringIO(),
                  metadata=InstanceMetadata())
    agent.start()
    app = _start_sdk_app(tmp_path / "sdk-app", vmagent.otlp_metrics_url)
    try:
        yield prometheus, pod, app
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        agent.stop(flush=False)
        destroy_pod(pod)
        vmagent.stop()
        prometheus.stop()


def _traffic(pod) -> None:  # type: ignore[no-untyped-def]
    pod.exec("python3", "-c", """
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(30): u.sendto(b"x", ("127.0.0.1", 9))
for _ in range(5):
    try: socket.create_connection(("127.0.0.1", 1))
    except OSError: pass
""")


def _selector_problems(prometheus, expr: str) -> tuple[bool, list[str]]:  # type: ignore[no-untyped-def]
    """(every selector has series here with two samples in the last minute, enough for a
    rate; labels filtered on that no series of the metric has)."""
    all_match, problems = True, []
    for name, matchers in _SELECTOR.findall(expr):
        if prometheus.query(f"count_over_time({name}{{{matchers}}}[1m]) > 1"):
            continue
        all_match = False
        labels = {label for series in prometheus.series(name) for label in series}
        for label, op, value in _MATCHER.findall(matchers):
            if op in ("=", "=~") and value != ".*" and labels and label not in labels:
                problems.append(f"{name} has no label {label!r} (has {sorted(labels)})")
    return all_match, problems


def test_dashboard_and_rule_queries_return_data_for_what_the_agent_produced(
        running_agent) -> None:
    prometheus, pod, app = running_agent
    for _ in range(10):  # traffic spread over the run, so rates have something to show
        _traffic(pod)
        time.sleep(2)
    out, err = app.communicate(timeout=30)
    assert app.returncode == 0 and "done" in out, f"SDK app failed:\n{out}\n{err}"
    time.sleep(2)  # vmagent's flush interval: the app's last export reaches Prometheus
    present = set(prometheus.api("label/__name__/values"))
    for name in ("netreceiver_pod_packet_drops_total", "netreceiver_softirq_latency_seconds_bucket",
                 "dns_lookup_duration_seconds_bucket", "netreceiver_sdk_socket_errors_total"):
        assert name in present, f"{name} never arrived"
    # the application's resource became the labels sdk.rules.yaml groups by
    lookups = prometheus.query('app:dns_lookups:rate5m{service_name="checkout"}')
    assert [(s["metric"].get("k8s_namespace_name"), s["metric"].get("k8s_pod_name"),
             s["metric"].get("k8s_node_name")) for s in lookups] == [
        ("shop", "checkout-e2e", "deploy-e2e")], lookups
    failures, with_data, skipped = [], Counter(), 0
    for where, expr in _queries():
        query = _substitute(expr)
        try:
            result = prometheus.query(query)
        except RuntimeError as exc:
            failures.append(f"{where}: {expr!r} does not execute: {exc}")
            continue
        all_match, problems = _selector_problems(prometheus, query)
        failures += [f"{where}: {problem}" for problem in problems]
        if not metric_names(query) <= present or not all_match or _FILTERS.search(expr):
            skipped += 1
            continue
        if result:
            with_data[where.split(":")[0]] += 1
        else:
            failures.append(f"{where}: {expr!r} returned nothing although its series exist")
    unhealthy = [f"{r.get('name')}: {r.get('lastError')}" for r in prometheus.rules()
                 if r.get("health") != "ok"]
    print(f"queries with data: {dict(with_data)}; not checkable here: {skipped}")
    assert not failures, "\n".join(failures)
    assert not unhealthy, unhealthy
    assert sum(with_data.values()) >= 40
    # the SDK's DNS (answered and lost) and socket errors; the eBPF latency and drops
    assert with_data["sdk.json"] >= 8 and with_data["sdk.rules.yaml"] >= 4, with_data
    assert with_data["ebpf.json"] >= 8 and with_data["ebpf.rules.yaml"] >= 6, with_data
