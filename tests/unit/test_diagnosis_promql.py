"""Conditions → PromQL (remote mode), the cluster table, and local mode's handling of it."""

from __future__ import annotations

import pytest

from otel_netreceiver.catalogue import CATALOGUE, metric
from otel_netreceiver.diagnosis.engine import evaluate
from otel_netreceiver.diagnosis.local import HistorySource
from otel_netreceiver.diagnosis.model import Condition, Op, Question, Scope, Signal
from otel_netreceiver.diagnosis.promql import Target, attributes_back, expression, pods_expression
from otel_netreceiver.diagnosis.rules import RULES, metric_names
from otel_netreceiver.diagnosis.rules_cluster import CLUSTER_RULES
from otel_netreceiver.history.store import History
from otel_netreceiver.model import Point, attrs

S = 10**9
Q = Question("", 0, 600 * S, pod_uid="uid-a", every_pod=True)
ENA = Signal("aws.ena.allowance.exceeded", Scope.NODE, (("aws.ena.allowance", "linklocal"),),
             ("network.interface.name",))
# Kubernetes control-plane metrics the project already scrapes (deploy/kubernetes/control-plane
# and tests/integration/test_deploy_observability.py), plus self-managed etcd's database size
# and the per-target series Prometheus itself writes for every scrape
KNOWN_RAW = {"apiserver_request_duration_seconds", "apiserver_flowcontrol_rejected_requests_total",
             "apiserver_flowcontrol_current_inqueue_requests",
             "apiserver_flowcontrol_current_executing_seats",
             "apiserver_flowcontrol_nominal_limit_seats",
             "apiserver_flowcontrol_request_concurrency_limit", "etcd_request_duration_seconds",
             "apiserver_storage_size_bytes", "scheduler_pending_pods",
             "etcd_mvcc_db_total_size_in_bytes", "scrape_samples_scraped"}


def test_increase_of_a_node_signal_keeps_the_node_in_the_cluster_view():
    assert expression(Condition(ENA), Q, Target()) == (
        'sum by (network_interface_name, aws_ena_allowance, k8s_node_name) '
        '(increase(aws_ena_allowance_exceeded_total{aws_ena_allowance="linklocal"}[600s]))')


def test_node_filter_accepts_either_resource_label():
    expr = expression(Condition(ENA, Op.RATE), Q, Target("node-a"))
    left, right = expr.split(" or ")
    assert 'k8s_node_name="node-a"' in left and 'host_name="node-a"' in right
    assert left.startswith("(sum by (network_interface_name, aws_ena_allowance) (rate(")


@pytest.mark.parametrize(("scope", "matcher"), [
    (Scope.POD, 'k8s_pod_uid="uid-a"'), (Scope.HOST, 'netns_kind="host"')])
def test_scopes_become_label_matchers(scope, matcher):
    signal = Signal("netreceiver.udp.rcvbuf_errors", scope)
    assert f"netreceiver_udp_rcvbuf_errors_total{{{matcher}}}[600s]" in \
        expression(Condition(signal), Q, Target())


def test_each_op_has_its_promql_shape():
    gauge = Signal("netreceiver.series.exported", Scope.NODE, group_by=("instrument",))
    counter = Signal("netreceiver.export.bytes", Scope.NODE)
    raw = Signal("apiserver_request_duration_seconds", Scope.ALL, (), ("verb", "instance"),
                 raw=True, exclude=(("verb", "WATCH"), ("verb", "LIST")))
    t = Target("n")
    assert expression(Condition(gauge, Op.LEVEL), Q, Target()).startswith(
        "max by (instrument, k8s_node_name) (last_over_time(netreceiver_series_exported{")
    growth = expression(Condition(gauge, Op.GROWTH, 0.2), Q, t).split(" or ")[0]
    assert ("- sum by (instrument) (netreceiver_series_exported{k8s_node_name=\"n\"} "
            "offset 600s)) / sum by (instrument)") in growth
    rate_growth = expression(Condition(counter, Op.GROWTH, 0.2), Q, t)
    assert "rate(netreceiver_export_bytes_total{k8s_node_name=\"n\"}[300s] offset 300s)" \
        in rate_growth
    ratio = expression(Condition(counter, Op.RATIO, 0.5, of=counter), Q, t).split(" or ")[0]
    assert ratio.count("increase(netreceiver_export_bytes_total") == 2 and " / " in ratio
    assert expression(Condition(raw, Op.QUANTILE, 1.0, q=0.99), Q, t) == (
        "histogram_quantile(0.99, sum by (le, verb, instance) (rate("
        'apiserver_request_duration_seconds_bucket{verb!~"WATCH|LIST"}[600s])))')


def test_label_values_are_escaped():
    signal = Signal("x", Scope.ALL, (("a", 'q"\\'),), raw=True, exclude=(("b", "1.5|x"),))
    expr = expression(Condition(signal), Q, Target())
    assert 'a="q\\"\\\\"' in expr and 'b!~"1\\\\.5\\\\|x"' in expr


def test_pods_are_listed_per_namespace_and_node():
    expr = pods_expression(Question("", 0, 60 * S, namespace="shop"), Target("n1"))
    assert expr.count("group by (k8s_pod_uid, k8s_pod_name, k8s_namespace_name)") == 2
    assert 'k8s_namespace_name="shop"' in expr and 'host_name="n1"' in expr


def test_labels_come_back_as_the_attributes_local_mode_uses():
    assert attributes_back(ENA, {"network_interface_name": "eth0", "aws_ena_allowance": "linklocal",
                                 "k8s_node_name": "n1", "job": "x"}) == (
        ("aws.ena.allowance", "linklocal"), ("k8s.node.name", "n1"),
        ("network.interface.name", "eth0"))


def test_cluster_table_names_known_metrics_and_stays_apart_from_rules():
    ids = [r.id for r in (*RULES, *CLUSTER_RULES)]
    assert len(ids) == len(set(ids))
    for rule in CLUSTER_RULES:
        assert rule.topics == {"cluster"} and rule.source and rule.advice and rule.summary
        for signal in rule.signals():
            assert (signal.metric in KNOWN_RAW) if signal.raw else (signal.metric in CATALOGUE)
    assert metric_names() <= set(CATALOGUE)  # the local history keeps only the node table
    # every node-table signal has a Prometheus name (remote mode can read all of RULES)
    assert all(metric(s.metric) for r in RULES for s in r.signals())


def test_local_mode_skips_raw_signals_and_none_of_does_not_veto_unread():
    history = History(300.0, {"netreceiver.k8s.pods"})
    history.record([Point(metric("netreceiver.k8s.pods"), attrs({}), 10.0)], 100 * S)
    history.record([Point(metric("netreceiver.k8s.pods"), attrs({}), 30.0)], 200 * S)
    source = HistorySource(history)
    question = Question("", 90 * S, 210 * S)
    raw = Condition(Signal("scheduler_pending_pods", Scope.ALL, raw=True), Op.LEVEL, None)
    assert source.evaluate(raw, question) == []
    assert evaluate(CLUSTER_RULES, source, question) == []
    growth = Condition(Signal("netreceiver.k8s.pods", Scope.NODE), Op.GROWTH, 1.0)
    assert [e.delta for e in source.evaluate(growth, question)] == [2.0]


def test_remote_command_windows_take_days_and_iso_times():
    from otel_netreceiver.diagnosis.command import parse_at, parse_since

    assert parse_since("3d") == 3 * 86400 and parse_since("30m") == 1800
    with pytest.raises(ValueError, match="--since '0s': must be at least 1s"):
        parse_since("0s")
    with pytest.raises(ValueError, match="--since 'soon'"):
        parse_since("soon")
    assert parse_at("", 42.0) == 42.0 and parse_at("1700000000.5", 0) == 1700000000.5
    assert parse_at("2026-12-01T20:00:00Z", 0) == 1796155200.0
    with pytest.raises(ValueError, match="give a time zone"):
        parse_at("2026-12-01T20:00:00", 0)
