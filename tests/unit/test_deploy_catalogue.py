"""Every series a rule in deploy/ reads is in the catalogue (after OTLP → Prometheus naming).

The agent's and the SDK's rule files (deploy/rules/*.rules.yaml) may read catalogue metrics
and recorded series only; the control-plane rules (deploy/rules/control-plane/) read the
documented Kubernetes control-plane metrics (tests/support/controlplane.py) instead.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.naming import prometheus_series_names
from tests.support.controlplane import CONTROL_PLANE_METRICS
from tests.support.promql import metric_names

DEPLOY = Path(__file__).parent.parent.parent / "deploy"
BUILTIN = {"ALERTS", "ALERTS_FOR_STATE"}


def _agent_rule_files() -> list[Path]:
    return sorted((DEPLOY / "rules").glob("*.rules.yaml"))


def _control_plane_rule_files() -> list[Path]:
    return sorted((DEPLOY / "rules/control-plane").glob("*.rules.yaml"))


def _rules(paths: list[Path]) -> list[dict]:
    return [rule for path in paths
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def _recorded() -> set[str]:
    every = _rules(_agent_rule_files() + _control_plane_rule_files())
    return {r["record"] for r in every if "record" in r}


def _unknown(paths: list[Path], known: set[str]) -> set[tuple[str, str]]:
    return {(r.get("alert") or r.get("record"), name) for r in _rules(paths)
            for name in metric_names(r["expr"]) if name not in known}


def test_there_are_rule_files() -> None:
    names = {p.name for p in _agent_rule_files()}
    assert {"pod-network.rules.yaml", "ebpf.rules.yaml", "sdk.rules.yaml"} <= names, names
    assert _control_plane_rule_files(), "deploy/rules/control-plane/*.rules.yaml missing"


def test_rules_read_only_catalogue_metrics_or_recorded_series() -> None:
    known = {n for m in CATALOGUE.values() for n in prometheus_series_names(m)}
    unknown = _unknown(_agent_rule_files(), known | _recorded() | BUILTIN)
    assert not unknown, f"rules read series the agent does not emit: {sorted(unknown)}"


def test_control_plane_rules_read_only_the_documented_kubernetes_metrics() -> None:
    unknown = _unknown(_control_plane_rule_files(),
                       set(CONTROL_PLANE_METRICS) | _recorded() | BUILTIN)
    assert not unknown, f"control-plane rules read undocumented series: {sorted(unknown)}"


def test_the_name_check_catches_a_metric_nobody_emits() -> None:
    rule = {"alert": "Typo", "expr": "rate(netreceiver_tcp_listen_drop_total[5m]) > 0"}
    assert metric_names(rule["expr"]) == {"netreceiver_tcp_listen_drop_total"}
    known = {n for m in CATALOGUE.values() for n in prometheus_series_names(m)}
    assert "netreceiver_tcp_listen_drop_total" not in known
    assert "netreceiver_tcp_listen_drops_total" in known
