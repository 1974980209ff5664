"""deploy/ alerting rules: promtool checks and unit tests, alert hygiene, the AMP resource in sync.

promtool comes from scripts/install-deps.sh (Prometheus 2.53, in /opt/otel-netreceiver/tools/bin).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent.parent
RULES_DIR = ROOT / "deploy/rules"
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yaml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.test.yaml"))
DEPLOYED = RULES_DIR / "ena-allowances.rules.yaml"
AMP_RESOURCE = ROOT / "deploy/amp/rule-groups-namespace.yaml"
SYNC_SCRIPT = ROOT / "scripts/sync-amp-rules.py"
COLLECTION_INTERVAL_S = 15  # the agent's default
SEVERITIES = {"critical", "warning", "info"}
ALLOWANCES = ("bw_in", "bw_out", "pps", "conntrack", "linklocal")


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return _run([require_tool("promtool"), *args])


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def _rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def _alerts(path: Path) -> list[dict[str, Any]]:
    return [rule for rule in _rules(path) if "alert" in rule]


def _seconds(duration: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|[smhdwy])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return int(sum(int(n) * units[u] for n, u in parts))


def _load_sync_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_amp_rules", SYNC_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, _report(result)
    # lint findings (e.g. duplicate rules) print FAILED but still exit 0
    assert "FAILED" not in result.stdout + result.stderr, _report(result)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, _report(result)


def test_rule_and_test_files_exist() -> None:
    assert {p.name for p in RULE_FILES} >= {"ena-allowances.rules.yaml",
                                            "guide-node-net-ethtool.rules.yaml"}
    assert {p.name for p in TEST_FILES} >= {"ena-allowances.test.yaml",
                                            "guide-node-net-ethtool.test.yaml"}


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_has_severity_summary_description(path: Path) -> None:
    for alert in _alerts(path):
        name = alert["alert"]
        assert alert.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = alert.get("annotations", {})
        assert annotations.get("summary"), f"{name}: no summary"
        assert annotations.get("description"), f"{name}: no description"


def test_every_alert_is_unit_tested() -> None:
    tested = "".join(p.read_text() for p in TEST_FILES)
    for path in RULE_FILES:
        for alert in _alerts(path):
            assert f"alertname: {alert['alert']}\n" in tested, f"{alert['alert']} has no test"


def test_deployed_alerts_link_a_runbook_and_keep_node_interface_labels() -> None:
    for alert in _alerts(DEPLOYED):
        annotations = alert["annotations"]
        assert annotations.get("runbook_url", "").startswith("docs/playbooks.md#ena-"), alert
        assert "$labels.service_instance_id" in annotations["summary"], alert["alert"]
        assert "$labels.network_interface_name" in annotations["summary"], alert["alert"]
        # aggregations would drop the node / interface / ENI labels
        assert not re.search(r"\b(sum|avg|max|min|count|topk)\b", alert["expr"]), alert["expr"]


def test_deployed_rules_cover_every_allowance() -> None:
    exprs = " ".join(rule["expr"] for rule in _rules(DEPLOYED))
    for allowance in ALLOWANCES:
        assert f'aws_ena_allowance="{allowance}"' in exprs, allowance


def test_deployed_rules_fix_the_guide_windows_and_interface() -> None:
    for rule in _rules(DEPLOYED):
        expr = rule["expr"]
        assert "device=" not in expr and "network_interface_name=" not in expr, expr
        for window in re.findall(r"\[([0-9a-z]+)\]", expr):
            assert _seconds(window) >= 4 * COLLECTION_INTERVAL_S, f"{window} in {expr}"


def test_amp_rule_groups_namespace_embeds_the_rule_file() -> None:
    resource = yaml.safe_load(AMP_RESOURCE.read_text())
    assert resource["apiVersion"] == "prometheusservice.services.k8s.aws/v1alpha1"
    assert resource["kind"] == "RuleGroupsNamespace"
    assert resource["spec"]["workspaceID"] == "<WORKSPACE-ID>"
    assert resource["spec"]["name"]
    embedded = yaml.safe_load(resource["spec"]["configuration"])
    assert embedded == yaml.safe_load(DEPLOYED.read_text())


def test_sync_script_check_passes() -> None:
    result = _run([sys.executable, str(SYNC_SCRIPT), "--check"])
    assert result.returncode == 0, _report(result)


def test_sync_script_reports_a_stale_resource(tmp_path: Path) -> None:
    sync = _load_sync_script()
    stale = tmp_path / "rule-groups-namespace.yaml"
    stale.write_text(sync.render().replace("severity: critical", "severity: info", 1))
    diff = sync.stale_diff(stale, sync.render()).splitlines()
    assert any(line.startswith("-") and "severity: info" in line for line in diff), diff
    assert any(line.startswith("+") and "severity: critical" in line for line in diff), diff
    assert sync.stale_diff(stale, stale.read_text()) == ""
