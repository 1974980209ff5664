"""Every series a rule in deploy/ reads is in the catalogue (after OTLP → Prometheus naming)."""

from __future__ import annotations

from pathlib import Path

import yaml

from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.naming import prometheus_series_names
from tests.support.promql import metric_names

DEPLOY = Path(__file__).parent.parent.parent / "deploy"
BUILTIN = {"ALERTS", "ALERTS_FOR_STATE"}


def _rule_files() -> list[Path]:
    return sorted((DEPLOY / "rules").glob("*.rules.yaml"))


def _rules() -> list[dict]:
    return [rule for path in _rule_files()
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_there_are_rule_files() -> None:
    assert _rule_files(), "deploy/rules/*.rules.yaml missing"


def test_rules_read_only_catalogue_metrics_or_recorded_series() -> None:
    known = {n for m in CATALOGUE.values() for n in prometheus_series_names(m)}
    known |= {r["record"] for r in _rules() if "record" in r} | BUILTIN
    unknown = {(r.get("alert") or r.get("record"), name) for r in _rules()
               for name in metric_names(r["expr"]) if name not in known}
    assert not unknown, f"rules read series the agent does not emit: {sorted(unknown)}"
