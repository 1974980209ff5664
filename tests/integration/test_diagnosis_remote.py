"""Remote diagnosis against a real Prometheus 2.53 holding backfilled series.

Three past hours are written with ``promtool tsdb create-blocks-from openmetrics`` before
Prometheus starts: hour A (APF rejections at a workload level, queueing, one slow API
server while etcd is fast, unschedulable pods, etcd near its quota, the agent's and a
scrape target's output growing with a flat workload, DNS throttled at node-a's ENI, UDP
receive-buffer drops in two pods), hour B (system-level rejections, API and etcd both
slow, etcd database large, output growing *with* the workload) and a healthy hour H.
Each playbook must fire on its shape and stay quiet on the others; the node playbooks
must give the same verdicts as local mode over the same samples.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from otel_netreceiver.diagnosis.engine import diagnose
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.model import Question
from otel_netreceiver.diagnosis.promql import Target
from otel_netreceiver.diagnosis.remote import PrometheusSource, QueryClient, RemoteError
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.diagnosis.rules_cluster import CLUSTER_RULES, ETCD_QUOTA
from otel_netreceiver.history.store import History
from tests.support.backends import Prometheus, start_prometheus
from tests.support.backfill import AgentSeries, PromSeries, backfill, histogram, openmetrics

HOUR, STEP, WINDOW = 3600.0, 15.0, 1800.0
BASE = (int(time.time()) // 3600 - 12) * 3600  # 12 hours ago, hour-aligned
START = {"A": BASE, "B": BASE + 2 * HOUR, "H": BASE + 4 * HOUR}
BOUNDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
API1, API2 = "10.0.1.1:443", "10.0.2.2:443"
NODE_A = {"k8s_node_name": "node-a", "host_name": "ip-10-0-0-1"}
NODE_B = {"host_name": "node-b"}  # a node whose pipeline copies only host.name
ALL_RULES = RULES + CLUSTER_RULES
NODE_RULE_IDS = {r.id for r in RULES}


def _pod(uid: str, name: str, namespace: str, inode: str) -> dict[str, str]:
    return {"k8s.pod.uid": uid, "k8s.pod.name": name, "k8s.namespace.name": namespace,
            "netns.kind": "pod", "netns.inode": inode}


WEB_A, WEB_B = _pod("uid-a", "web-a", "shop", "4026532001"), _pod("uid-b", "web-b", "shop", "1")
DNS_POD = _pod("uid-dns", "coredns-1", "kube-system", "4026532009")
AMAZON_DNS = {"linklocal.service": "amazon_dns"}


def _flat(v: float):
    return lambda t: v


def _rising(v0: float, per_s: float):
    return lambda t: v0 + per_s * t


def _buckets(p: str, name: str, labels: dict[str, str], bucket: int, per_s: float) -> list:
    rates = [0.0] * (len(BOUNDS) + 1)
    rates[bucket] = per_s
    return histogram(name, {**labels, "job": "kubernetes-apiservers"}, BOUNDS, rates)


def agent(p: str) -> list[AgentSeries]:
    """node-a and node-b as the agents export them; faults only in hour A."""
    bad, grow = p == "A", p == "B"
    ena = {"network.interface.name": "eth0", "aws.eni.id": "eni-a"}
    return [
        AgentSeries("aws.ena.allowance.exceeded", {**ena, "aws.ena.allowance": "linklocal"},
                    _rising(7, 5) if bad else _flat(7), NODE_A),
        AgentSeries("aws.ena.allowance.exceeded", {**ena, "aws.ena.allowance": "pps"},
                    _flat(0), NODE_A),
        AgentSeries("netreceiver.udp.rcvbuf_errors", WEB_A, _rising(0, 2) if bad else _flat(4),
                    NODE_A),
        AgentSeries("netreceiver.udp.rcvbuf_errors", DNS_POD, _flat(0), NODE_A),
        # the pods behind the link-local drops: web-a sends 3/4, coredns-1 1/4 through the
        # ENI; what coredns-1 sent that the node answered (NodeLocal DNSCache) never counts
        AgentSeries("netreceiver.pod.linklocal.packets", {**WEB_A, **AMAZON_DNS},
                    _rising(0, 30) if bad else _flat(0), NODE_A),
        AgentSeries("netreceiver.pod.linklocal.packets", {**DNS_POD, **AMAZON_DNS},
                    _rising(0, 10) if bad else _flat(0), NODE_A),
        AgentSeries("netreceiver.pod.linklocal.packets",
                    {**DNS_POD, **AMAZON_DNS, "linklocal.answered_by": "node"},
                    _rising(0, 500) if bad else _flat(0), NODE_A),
        AgentSeries("netreceiver.udp.rcvbuf_errors", WEB_B, _rising(0, 3) if bad else _flat(1),
                    NODE_B),
        # seed 004: output grows in A and B; only in B does the workload grow with it
        AgentSeries("netreceiver.series.exported", {"instrument": "k8s.pod.network.io"},
                    _rising(1000, 1000 / HOUR) if p != "H" else _flat(1000), NODE_A),
        AgentSeries("netreceiver.export.bytes", {"exporter": "otlp"},
                    (lambda t: 0.5 * t * t) if bad else _rising(0, 1000), NODE_A),
        AgentSeries("netreceiver.k8s.pods", {}, _rising(20, 20 / HOUR) if grow else _flat(20),
                    NODE_A),
        AgentSeries("netreceiver.netns.count", {"netns.kind": "pod"},
                    _rising(20, 20 / HOUR) if grow else _flat(20), NODE_A),
    ]


def control_plane(p: str) -> list[PromSeries]:
    a, b = p == "A", p == "B"
    out = []
    for api in (API1, API2):
        slow = api == API2 and p != "H"  # one API server of two, at 1% of the volume
        out += _buckets(p, "apiserver_request_duration_seconds",
                        {"verb": "GET", "resource": "pods", "instance": api},
                        6 if slow else 0, 10 if slow else 1000)
        out += _buckets(p, "apiserver_request_duration_seconds",
                        {"verb": "WATCH", "resource": "pods", "instance": api}, 10, 5)
        out += _buckets(p, "apiserver_request_duration_seconds",
                        {"verb": "LIST", "resource": "pods", "instance": api}, 3, 1)
        out += _buckets(p, "etcd_request_duration_seconds",
                        {"operation": "get", "type": "*core.Pod", "instance": api},
                        5 if b else 0, 50 if b else 500)
        size = 0.95 * ETCD_QUOTA if a else 0.85 * ETCD_QUOTA if b else 1.5 * 1024**3
        out.append(PromSeries("apiserver_storage_size_bytes",
                              {"instance": api, "storage_cluster_id": "etcd-0"}, _flat(size)))
        out.append(PromSeries("apiserver_flowcontrol_current_inqueue_requests",
                              {"instance": api, "priority_level": "workload-low"},
                              _flat(5 if a and api == API2 else 0)))
    for level, schema, seats, rising in (("workload-low", "service-accounts", 24, a),
                                         ("leader-election", "leader-election", 10, b),
                                         ("exempt", "exempt", 0, b)):
        out.append(PromSeries("apiserver_flowcontrol_rejected_requests_total",
                              {"priority_level": level, "flow_schema": schema,
                               "reason": "queue-full", "instance": API1},
                              _rising(3, 0.5) if rising else _flat(3)))
        out.append(PromSeries("apiserver_flowcontrol_nominal_limit_seats",
                              {"priority_level": level, "instance": API1}, _flat(seats)))
    for queue, n in (("unschedulable", 3 if a else 0), ("active", 2), ("backoff", 0)):
        out.append(PromSeries("scheduler_pending_pods", {"queue": queue, "job": "kube-scheduler"},
                              _flat(n)))
    out.append(PromSeries("scrape_samples_scraped", {"job": "cadvisor", "instance": "node-a"},
                          _rising(10000, 10000 / HOUR) if p != "H" else _flat(10000)))
    return out


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    workdir = tmp_path_factory.mktemp("remote-diagnosis")
    periods = [(START[p], [*(s.prom() for s in agent(p)), *control_plane(p)]) for p in START]
    backfill(workdir / "tsdb", openmetrics(periods, HOUR, STEP))
    with start_prometheus(workdir) as backend:
        yield backend


def _question(p: str, namespace: str = "") -> Question:
    end = START[p] + HOUR
    return Question("", int((end - WINDOW) * 1e9), int(end * 1e9), every_pod=True,
                    namespace=namespace)


def _remote(prometheus: Prometheus, p: str, node: str = "") -> set[tuple[str, str]]:
    source = PrometheusSource(QueryClient(prometheus.url), Target(node))
    found = diagnose(ALL_RULES, source, source, _question(p))
    return {(f.rule, dict(f.subject).get("k8s.pod.name", "")) for f in found}


CONTROL_A = {("cp.apf_rejected", ""), ("cp.apf_queueing", ""), ("cp.api_latency", ""),
             ("cp.scheduler_backlog", ""), ("cp.etcd_db_near_quota", ""),
             ("self.agent_growth", ""), ("self.scrape_target_growth", "")}
CONTROL_B = {("cp.apf_rejected_system", ""), ("cp.api_latency_etcd", ""),
             ("cp.etcd_db_large", "")}


def test_each_playbook_fires_on_its_shape_and_only_there(prometheus: Prometheus):
    assert _remote(prometheus, "A") == CONTROL_A | {
        ("dns.eni_linklocal", ""), ("udp.receive_buffer", "web-a"),
        ("udp.receive_buffer", "web-b")}
    assert _remote(prometheus, "B") == CONTROL_B
    assert _remote(prometheus, "H") == set()


def test_latency_names_the_slow_api_server_and_is_not_averaged_away(prometheus: Prometheus):
    source = PrometheusSource(QueryClient(prometheus.url))
    found = {f.rule: f for f in diagnose(ALL_RULES, source, source, _question("A"))}
    slow = [e for e in found["cp.api_latency"].evidence if e.signal.startswith("apiserver_req")]
    assert [dict(e.attributes) for e in slow] == [
        {"instance": API2, "resource": "pods", "verb": "GET"}]
    assert 2.0 < slow[0].delta <= 5.0 and slow[0].op == "quantile"
    # ... and shows etcd's own p99 on both servers, which was normal
    etcd = [e for e in found["cp.api_latency"].evidence if e.signal.startswith("etcd_")]
    assert sorted(dict(e.attributes)["instance"] for e in etcd) == [API1, API2]
    assert all(e.delta <= 0.05 for e in etcd)
    # evidence of the APF rejection names its priority level and flow schema
    apf = found["cp.apf_rejected"].evidence[0]
    assert dict(apf.attributes)["priority_level"] == "workload-low" and apf.delta > 800
    growth = found["self.agent_growth"].evidence
    assert {e.signal for e in growth} == {"netreceiver.series.exported",
                                          "netreceiver.export.bytes"}
    assert all(dict(e.attributes) == {"k8s.node.name": "node-a"} for e in growth)


def test_node_filter_reads_k8s_node_name_or_host_name(prometheus: Prometheus):
    assert _remote(prometheus, "A", "node-a") == CONTROL_A | {
        ("dns.eni_linklocal", ""), ("udp.receive_buffer", "web-a")}
    assert _remote(prometheus, "A", "node-b") == (CONTROL_A - {("self.agent_growth", "")}) | {
        ("udp.receive_buffer", "web-b")}


def _local(p: str, series: list[AgentSeries]) -> set[tuple[str, str]]:
    history = History(HOUR + 60, metric_names())
    t = 0.0
    while t <= HOUR:
        history.record([s.point(t) for s in series], int((START[p] + t) * 1e9))
        t += STEP
    source = HistorySource(history)
    return {(f.rule, dict(f.subject).get("k8s.pod.name", ""))
            for f in diagnose(RULES, source, source, _question(p))}


@pytest.mark.parametrize("period", ["A", "H"])
def test_node_playbooks_give_the_same_verdicts_locally_and_remotely(prometheus, period):
    node_a = [s for s in agent(period) if s.resource is NODE_A]
    local = _local(period, node_a)
    remote = {f for f in _remote(prometheus, period, "node-a") if f[0] in NODE_RULE_IDS}
    assert local == remote
    assert local == ({("dns.eni_linklocal", ""), ("udp.receive_buffer", "web-a")}
                     if period == "A" else set())


def test_the_linklocal_finding_names_the_same_pods_locally_and_remotely(prometheus):
    node_a = [s for s in agent("A") if s.resource is NODE_A]
    history = History(HOUR + 60, metric_names())
    for t in range(0, int(HOUR) + 1, int(STEP)):
        history.record([s.point(t) for s in node_a], int((START["A"] + t) * 1e9))
    local_source = HistorySource(history)
    remote_source = PrometheusSource(QueryClient(prometheus.url), Target("node-a"))
    for source in (local_source, remote_source):
        (found,) = [f for f in diagnose(RULES, source, source, _question("A"))
                    if f.rule == "dns.eni_linklocal"]
        assert [dict(r)["k8s.pod.name"] for r in found.related] == ["web-a", "coredns-1"]
        # Prometheus extrapolates increase() to the window's edges: the shares are exact
        assert "shop/web-a " in found.summary and "(75%, 30/s; amazon_dns 100%)" \
            in found.summary, found.summary
        assert "kube-system/coredns-1 " in found.summary and "(25%, 10/s" in found.summary


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_netreceiver", "diagnose", *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})


def test_cli_prints_the_cluster_findings_as_json_and_text(prometheus: Prometheus):
    end = str(START["A"] + HOUR)
    done = _cli("--prometheus", prometheus.url, "--at", end, "--since", "30m",
                "--namespace", "shop", "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["node"] == "(cluster)" and doc["window"]["seconds"] == WINDOW
    pods = {f["pod"]["k8s.pod.name"] for f in doc["findings"] if "pod" in f}
    assert pods == {"web-a", "web-b"}
    assert doc["findings"][0]["severity"] == "critical"  # etcd near quota, ENA linklocal
    text = _cli("--prometheus", prometheus.url, "--at", end, "--since", "30m", "--pod", "web-b",
                "--node", "node-b")
    assert text.returncode == 0, text.stderr
    assert "udp_receive_buffer_overflow (udp.receive_buffer) pod shop/web-b" in text.stdout
    assert "web-a" not in text.stdout and "etcd_database_near_quota" not in text.stdout


def test_bad_input_is_named(prometheus: Prometheus):
    done = _cli("--prometheus", prometheus.url, "--since", "soon")
    assert done.returncode == 2 and "--since" in done.stderr
    done = _cli("--prometheus", prometheus.url, "--sigv4-region", "eu-west-1")
    assert done.returncode == 2 and "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in done.stderr
    done = _cli("--node", "node-a", "--socket", "/nonexistent")
    assert done.returncode == 2 and "--node needs --prometheus" in done.stderr
    with pytest.raises(RemoteError, match=r"bad_data|parse error"):
        QueryClient(prometheus.url).query("sum(", time.time())


def test_signed_queries_reach_a_real_query_api(prometheus: Prometheus):
    """Prometheus ignores the SigV4 headers, but they must not break the request."""
    done = _cli("--prometheus", prometheus.url, "--sigv4-region", "eu-west-1", "--at",
                str(START["H"] + HOUR), "--since", "30m", "--format", "json")
    assert done.returncode == 2  # no credentials in this environment: named, nothing sent
    from otel_netreceiver.diagnosis.sigv4 import Credentials
    client = QueryClient(prometheus.url, region="eu-west-1",
                         credentials=Credentials("AKIDEXAMPLE", "secret", "token"))
    rows = client.query("max(apiserver_storage_size_bytes)", START["H"] + HOUR)
    assert float(rows[0]["value"][1]) == 1.5 * 1024**3


def test_promtool_parses_the_promql_of_every_rule(tmp_path):
    """Every condition of both tables, in the pod, node and cluster views, is valid PromQL."""
    from otel_netreceiver.diagnosis.promql import expression, pods_expression
    from tests.support.tools import require_tool

    question = Question("", 0, int(WINDOW * 1e9), pod_uid="uid-a", every_pod=True,
                        namespace="shop")
    exprs = {pods_expression(question, Target()), pods_expression(question, Target("n"))}
    for rule in ALL_RULES:
        for c in (*rule.deciding(), *rule.required(), *rule.excluding(), *rule.supporting()):
            exprs |= {expression(c, question, Target()), expression(c, question, Target("n"))}
    rules = [{"record": f"diagnosis:check_{i}", "expr": e} for i, e in enumerate(sorted(exprs))]
    path = tmp_path / "diagnosis.rules.yaml"
    path.write_text(json.dumps({"groups": [{"name": "diagnosis", "rules": rules}]}))
    done = subprocess.run([require_tool("promtool"), "check", "rules", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_pod_conditions_are_one_query_for_every_pod(prometheus: Prometheus):
    sent: list[str] = []

    class Recording(QueryClient):
        def query(self, expr: str, at: float) -> list[dict]:
            sent.append(expr)
            return super().query(expr, at)

    source = PrometheusSource(Recording(prometheus.url))
    found = diagnose(ALL_RULES, source, source, _question("A"))
    assert {dict(f.subject).get("k8s.pod.name") for f in found} == {None, "web-a", "web-b"}
    assert len(sent) == len(set(sent)) == source.queries  # nothing asked twice
    assert not [e for e in sent if 'k8s_pod_uid="' in e]  # and nothing asked per pod
