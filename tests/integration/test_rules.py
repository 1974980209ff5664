"""deploy/ rule files: promtool checks and unit tests, and the AMP resource in sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.tools import require_tool

ROOT = Path(__file__).parent.parent.parent
RULE_FILES = sorted((ROOT / "deploy/rules").glob("*.rules.yaml"))
TEST_FILES = sorted((ROOT / "deploy/rules/tests").glob("*.test.yaml"))


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_summary_description_and_is_tested() -> None:
    tested = "".join(p.read_text() for p in TEST_FILES)
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule
                assert rule["annotations"]["summary"] and rule["annotations"]["description"]
                assert f"alertname: {rule['alert']}" in tested, f"{rule['alert']} has no test"


def test_amp_rule_groups_namespace_embeds_the_rule_file() -> None:
    resource = yaml.safe_load((ROOT / "deploy/amp/rule-groups-namespace.yaml").read_text())
    assert resource["kind"] == "RuleGroupsNamespace"
    embedded = yaml.safe_load(resource["spec"]["configuration"])
    assert embedded == yaml.safe_load((ROOT / "deploy/rules/ena-allowances.rules.yaml").read_text())
    check = subprocess.run([sys.executable, "scripts/sync-amp-rules.py", "--check"], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
