"""Rules, Alertmanager and Grafana dashboards of deploy/: valid, tested, and reading real series.

promtool (Prometheus 2.53) and amtool come from scripts/install-deps.sh. Every PromQL
expression may read only metrics of the agent's catalogue (after the OTLP -> Prometheus name
translation), series recorded by deploy/rules/, or the Kubernetes control-plane metrics listed
here (scraped by deploy/kubernetes/control-plane).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_netreceiver.catalogue import CATALOGUE
from otel_netreceiver.naming import prometheus_series_names
from tests.integration.test_deploy_adot import scraped_metric_names
from tests.support.controlplane import CONTROL_PLANE_METRICS
from tests.support.promql import metric_names
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent.parent
RULES = ROOT / "deploy/rules"
AGENT_RULE_FILES = (RULES / "pod-network.rules.yaml", RULES / "agent-health.rules.yaml",
                    RULES / "ebpf.rules.yaml", RULES / "sdk.rules.yaml", RULES / "dns.rules.yaml",
                    RULES / "peers.rules.yaml")
CONTROL_PLANE_RULE_FILES = (RULES / "control-plane/control-plane.rules.yaml",)
NEW_RULE_FILES = AGENT_RULE_FILES + CONTROL_PLANE_RULE_FILES
ALL_RULE_FILES = (*sorted(RULES.glob("*.rules.yaml")), *CONTROL_PLANE_RULE_FILES)
TEST_FILES = tuple(RULES / "tests" / f"{name}.test.yaml"
                   for name in ("pod-network", "agent-health", "control-plane", "ebpf", "sdk",
                                "dns", "peers"))
DASHBOARDS = tuple(sorted((ROOT / "deploy/grafana").glob("*.json")))
AMP = ROOT / "deploy/amp"
DEPLOY_DOC = ROOT / "docs/deploy.md"
SEVERITIES = {"critical", "warning", "info"}
BUILTIN = {"ALERTS", "ALERTS_FOR_STATE"}

# Grafana's variables, replaced by something PromQL parses before promtool checks a panel.
# Heatmaps of the agent's and the SDK's histograms: bucket counts of all selected series per le
# (counts add up; a quantile or an average would not).
HEATMAP = re.compile(r"sum\(increase\(\w+_bucket\{.*\}\[\$__rate_interval\]\)\) by \(le\)")
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

Rule = dict[str, Any]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120)


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def _rules(path: Path) -> list[Rule]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def _catalogue_names() -> set[str]:
    return {name for metric in CATALOGUE.values() for name in prometheus_series_names(metric)}


def _recorded() -> set[str]:
    return {rule["record"] for path in ALL_RULE_FILES for rule in _rules(path) if "record" in rule}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _dashboard_exprs(path: Path) -> list[str]:
    return [target["expr"] for panel in _panels(json.loads(path.read_text()))
            for target in panel.get("targets", [])]


def _variable_exprs(path: Path) -> list[str]:
    variables = json.loads(path.read_text())["templating"]["list"]
    return [v["definition"] for v in variables if v["type"] == "query"]


def _label_values_metric(definition: str) -> str:
    match = re.fullmatch(r"label_values\(([a-zA-Z_:][\w:]*)(\{.*\})?, *\w+\)", definition)
    assert match, definition
    return match.group(1)


def _substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$\w+", ".*", expr)


# --- promtool ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NEW_RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    result = _run([require_tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, _report(result)
    assert "FAILED" not in result.stdout + result.stderr, _report(result)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    result = _run([require_tool("promtool"), "test", "rules", str(path)])
    assert result.returncode == 0, _report(result)


def test_every_new_alert_fires_and_stays_quiet_in_a_test() -> None:
    tests = {path.name: yaml.safe_load(path.read_text()) for path in TEST_FILES}
    cases = [case for suite in tests.values() for test in suite["tests"]
             for case in test.get("alert_rule_test", [])]
    for path in NEW_RULE_FILES:
        for rule in _rules(path):
            if "alert" not in rule:
                continue
            mine = [c for c in cases if c["alertname"] == rule["alert"]]
            assert any(c["exp_alerts"] for c in mine), f"{rule['alert']}: no firing case"
            assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']}: no quiet case"


@pytest.mark.parametrize("path", NEW_RULE_FILES, ids=lambda p: p.name)
def test_alerts_have_severity_summary_description_and_a_runbook(path: Path) -> None:
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', DEPLOY_DOC.read_text()))
    for rule in _rules(path):
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        doc, _, anchor = annotations["runbook_url"].partition("#")
        assert doc == "docs/deploy.md" and anchor in anchors, annotations["runbook_url"]


# --- metric names -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", AGENT_RULE_FILES, ids=lambda p: p.name)
def test_agent_rules_read_only_catalogue_or_recorded_series(path: Path) -> None:
    known = _catalogue_names() | _recorded() | BUILTIN
    unknown = {(r.get("alert") or r.get("record"), name) for r in _rules(path)
               for name in metric_names(r["expr"]) if name not in known}
    assert not unknown, f"rules read series nobody exports: {sorted(unknown)}"


@pytest.mark.parametrize("path", CONTROL_PLANE_RULE_FILES, ids=lambda p: p.name)
def test_control_plane_rules_read_only_listed_kubernetes_metrics(path: Path) -> None:
    known = CONTROL_PLANE_METRICS | _recorded() | BUILTIN
    unknown = {(r.get("alert") or r.get("record"), name) for r in _rules(path)
               for name in metric_names(r["expr"]) if name not in known}
    assert not unknown, sorted(unknown)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_read_only_known_series(path: Path) -> None:
    known = _catalogue_names() | _recorded() | CONTROL_PLANE_METRICS
    names = {name for expr in _dashboard_exprs(path) for name in metric_names(expr)}
    names |= {_label_values_metric(d) for d in _variable_exprs(path)}
    assert names, path.name
    assert names <= known, sorted(names - known)


def test_the_control_plane_scrape_keeps_every_metric_the_rules_and_dashboards_read() -> None:
    used = {name for path in CONTROL_PLANE_RULE_FILES for rule in _rules(path)
            for name in metric_names(rule["expr"])}
    used |= {name for path in DASHBOARDS for expr in _dashboard_exprs(path)
             for name in metric_names(expr)}
    needed = (used & CONTROL_PLANE_METRICS) - {"up"}  # "up" is the scrape's own
    assert needed <= scraped_metric_names(), sorted(needed - scraped_metric_names())
    assert scraped_metric_names() <= CONTROL_PLANE_METRICS


def test_the_name_finder_sees_through_grafana_syntax() -> None:
    expr = ('max(increase(apiserver_request_duration_seconds_bucket{verb=~"$verb"}'
            "[$__rate_interval])) by (le)")
    assert metric_names(expr) == {"apiserver_request_duration_seconds_bucket"}


# --- dashboards -------------------------------------------------------------------------------

def test_the_eight_dashboards_exist() -> None:
    assert [p.name for p in DASHBOARDS] == ["agent-health.json", "control-plane.json", "dns.json",
                                            "ebpf.json", "node-network.json", "peers.json",
                                            "pods.json", "sdk.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_uses_a_prometheus_datasource_variable(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and "__inputs" not in dashboard
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"


def test_control_plane_heatmap_takes_the_max_across_servers() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/control-plane.json").read_text())
    heatmaps = [p for p in _panels(dashboard) if p["type"] == "heatmap"]
    assert heatmaps
    for panel in heatmaps:
        for target in panel["targets"]:
            assert target["expr"].startswith("max(increase(apiserver_request_duration_seconds")
            assert target["expr"].endswith("by (le)") and target["format"] == "heatmap"
            assert "avg" not in target["expr"]


@pytest.mark.parametrize(("name", "histograms"), [
    ("ebpf.json", {"netreceiver_softirq_latency_seconds_bucket",
                   "netreceiver_netif_tx_latency_seconds_bucket"}),
    ("sdk.json", {"dns_lookup_duration_seconds_bucket"}),
    ("dns.json", {"netreceiver_pod_dns_latency_seconds_bucket"}),
])
def test_latency_heatmaps_are_bucket_counts_by_le(name: str, histograms: set[str]) -> None:
    dashboard = json.loads((ROOT / "deploy/grafana" / name).read_text())
    heatmaps = [p for p in _panels(dashboard) if p["type"] == "heatmap"]
    seen = set()
    for panel in heatmaps:
        for target in panel["targets"]:
            assert target["format"] == "heatmap" and target["legendFormat"] == "{{le}}"
            assert HEATMAP.fullmatch(target["expr"]), target["expr"]
            seen |= metric_names(target["expr"])
    assert seen == histograms


def _exprs_of(name: str) -> str:
    return "\n".join(_dashboard_exprs(ROOT / "deploy/grafana" / name))


def test_ebpf_dashboard_shows_drop_reasons_resets_by_direction_and_retransmits() -> None:
    exprs = _exprs_of("ebpf.json")
    rules = (RULES / "ebpf.rules.yaml").read_text()
    normal = re.search(r'drop_reason!~"([A-Z0-9_|]+)"', rules)
    assert normal, "ebpf.rules.yaml leaves out the normal drop reasons"
    assert f'drop_reason!~"{normal.group(1)}"' in exprs  # the alert's reasons, not others
    for needle in ("by (service_instance_id, k8s_namespace_name, k8s_pod_name, drop_reason)",
                   'tcp_reset_direction="sent"', 'tcp_reset_direction="received"',
                   "netreceiver_pod_tcp_retransmits_total", "drop_location"):
        assert needle in exprs, needle


def test_sdk_dashboard_shows_dns_errors_timeouts_and_socket_errors() -> None:
    exprs = _exprs_of("sdk.json")
    for needle in ('error_type=~".+"', 'error_type="timeout"', 'error_type="ECONNREFUSED"',
                   'error_type=~"ECONNRESET|EPIPE"', 'error_type=~"ETIMEDOUT|timeout"',
                   "histogram_quantile(0.99"):
        assert needle in exprs, needle


def test_dns_dashboard_shows_latency_per_class_linklocal_against_1024_and_failures() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dns.json").read_text())
    heatmap = next(p for p in _panels(dashboard) if p["type"] == "heatmap")
    assert heatmap["repeat"] == "resolver_class"  # one heatmap per resolver class
    assert 'dns_resolver_class=~"$resolver_class"' in heatmap["targets"][0]["expr"]
    lines = [p for p in _panels(dashboard)
             if any(s.get("value") == 1024 for s in p.get("fieldConfig", {}).get("defaults", {})
                    .get("thresholds", {}).get("steps", []))]
    line_exprs = "\n".join(t["expr"] for p in lines for t in p["targets"])
    assert "netreceiver_linklocal_peak_packets_per_second" in line_exprs
    assert 'netreceiver_pod_linklocal_packets_total{linklocal_answered_by!="node"' in line_exprs
    exprs = _exprs_of("dns.json")
    for needle in ("netreceiver_pod_dns_timeouts_total", "netreceiver_pod_dns_late_answers_total",
                   'dns_response_code=~"SERVFAIL|REFUSED"', 'dns_role="server"',
                   'aws_ena_allowance="linklocal"', "k8s_pod_name"):
        assert needle in exprs, needle


def test_peers_dashboard_shows_cross_zone_per_namespace_and_workload_and_pods_per_allowance(
) -> None:
    exprs = _exprs_of("peers.json")
    assert "workload:netreceiver_pod_peer_bytes_cross_zone:rate5m" in exprs  # recorded
    assert 'peer_class="other_zone"' in exprs and "by (k8s_namespace_name" in exprs
    assert 'aws_ena_allowance=~"bw_in|bw_out|pps"' in exprs
    for direction in ("transmit", "receive"):  # bw_out, bw_in: pods off the node
        assert (f'network_io_direction="{direction}", peer_class!~"same_pod|same_node"'
                in exprs), direction
    assert "netreceiver_pod_peer_packets_total{peer_class!~" in exprs  # pps


def test_pods_dashboard_covers_the_seed_002_playbooks() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/pods.json").read_text())
    rows = [p["title"] for p in _panels(dashboard) if p["type"] == "row"]
    for playbook in ("DNS", "Nginx 499/502/503/504", "TCP resets", "Latency jitter"):
        assert any(playbook in row for row in rows), playbook


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_parse(path: Path, tmp_path: Path) -> None:
    exprs = [_substitute(e) for e in _dashboard_exprs(path)]
    rule_file = tmp_path / "panels.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": [
        {"record": f"panel:query:{i}", "expr": expr} for i, expr in enumerate(exprs)]}]}))
    result = _run([require_tool("promtool"), "check", "rules", str(rule_file)])
    assert result.returncode == 0, _report(result)


# --- AMP resources ------------------------------------------------------------------------------

def _indented(text: str, indent: str) -> str:
    return "".join(indent + line if line.strip() else "\n"
                   for line in text.splitlines(keepends=True))


@pytest.mark.parametrize(("resource", "source"), [
    ("rule-groups-namespace-pod-network.yaml", "pod-network.rules.yaml"),
    ("rule-groups-namespace-agent-health.yaml", "agent-health.rules.yaml"),
    ("rule-groups-namespace-control-plane.yaml", "control-plane/control-plane.rules.yaml"),
    ("rule-groups-namespace-ebpf.yaml", "ebpf.rules.yaml"),
    ("rule-groups-namespace-sdk.yaml", "sdk.rules.yaml"),
    ("rule-groups-namespace-dns.yaml", "dns.rules.yaml"),
    ("rule-groups-namespace-peers.yaml", "peers.rules.yaml"),
])
def test_rule_groups_namespace_embeds_its_rule_file_verbatim(resource: str, source: str) -> None:
    text = (AMP / resource).read_text()
    document = yaml.safe_load(text)
    assert document["kind"] == "RuleGroupsNamespace"
    assert document["spec"]["workspaceID"] == "<WORKSPACE-ID>"
    rule_text = (RULES / source).read_text()
    assert text.endswith("  configuration: |\n" + _indented(rule_text, "    ")), (
        f"deploy/amp/{resource} is stale: re-embed deploy/rules/{source}")
    assert yaml.safe_load(document["spec"]["configuration"]) == yaml.safe_load(rule_text)


def _embedded_alertmanager_config() -> str:
    definition = yaml.safe_load((AMP / "alertmanager-definition.yaml").read_text())
    assert definition["kind"] == "AlertManagerDefinition"
    amp_document = yaml.safe_load(definition["spec"]["configuration"])
    assert set(amp_document) == {"alertmanager_config"}
    return amp_document["alertmanager_config"]


def test_alertmanager_definition_embeds_the_plain_file() -> None:
    plain = (AMP / "alertmanager.yaml").read_text()
    assert _embedded_alertmanager_config() == plain


@pytest.mark.parametrize("which", ["plain", "embedded"])
def test_amtool_check_config(which: str, tmp_path: Path) -> None:
    path = AMP / "alertmanager.yaml"
    if which == "embedded":
        path = tmp_path / "alertmanager.yaml"
        path.write_text(_embedded_alertmanager_config())
    result = _run([require_tool("amtool"), "check-config", str(path)])
    assert result.returncode == 0, _report(result)
    assert "SUCCESS" in result.stdout, _report(result)


def test_alertmanager_routes_to_sns_with_sigv4() -> None:
    config = yaml.safe_load((AMP / "alertmanager.yaml").read_text())
    assert set(config) >= {"route", "receivers"}
    assert config["route"]["receiver"] == "sns"
    sns = next(r for r in config["receivers"] if r["name"] == "sns")["sns_configs"][0]
    assert re.fullmatch(r"arn:aws:sns:[a-z0-9-]+:\d{12}:[\w-]+", sns["topic_arn"])
    assert sns["sigv4"]["region"] == sns["topic_arn"].split(":")[3]


def test_the_guides_misindented_alertmanager_config_is_rejected(tmp_path: Path) -> None:
    """Seed 000's block as published: "receivers" indented under "route"."""
    guide = ("route:\n   receiver: default_receiver\n receivers:\n - name: default_receiver\n"
             "    sns_configs:\n    - topic_arn: TOPIC-ARN\n      sigv4:\n        region: REGION\n")
    path = tmp_path / "guide.yaml"
    path.write_text(guide)
    result = _run([require_tool("amtool"), "check-config", str(path)])
    assert result.returncode != 0, _report(result)
