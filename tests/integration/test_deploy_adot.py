"""ADOT collector configurations in deploy/: only components ADOT ships, wired as AMP needs.

Checked in both forms: the plain ConfigMaps (sidecar, control plane) and the
OpenTelemetryCollector resource (DaemonSet overlay), as kustomize renders them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent.parent
KUBE = ROOT / "deploy/kubernetes"

# The components of the ADOT Collector distribution (aws-observability/aws-otel-collector,
# pkg/defaultcomponents/defaults.go; https://aws-otel.github.io/docs/components/ ). ADOT has no
# transform, deltatocumulative or k8sobjects components (docs/background.md, "OTLP into
# Prometheus and AMP").
ADOT_COMPONENTS: dict[str, frozenset[str]] = {
    "receivers": frozenset({"otlp", "prometheus", "awsxray", "awsecscontainermetrics",
                            "awscontainerinsightreceiver", "statsd", "zipkin", "jaeger",
                            "kafka", "filelog"}),
    "processors": frozenset({"batch", "memory_limiter", "attributes", "resource",
                             "resourcedetection", "probabilistic_sampler", "span", "filter",
                             "metricstransform", "experimental_metricsgeneration",
                             "cumulativetodelta", "deltatorate", "groupbytrace",
                             "tail_sampling", "k8sattributes"}),
    "exporters": frozenset({"prometheusremotewrite", "prometheus", "awsemf", "awsxray",
                            "awscloudwatchlogs", "otlp", "otlphttp", "debug", "file", "kafka",
                            "loadbalancing"}),
    "extensions": frozenset({"sigv4auth", "health_check", "pprof", "zpages", "awsproxy",
                             "ecs_observer", "file_storage"}),
}
NOT_IN_ADOT = {"transform", "deltatocumulative"}
AMP_REMOTE_WRITE = re.compile(
    r"^https://aps-workspaces\.\$\{env:AMP_REGION\}\.amazonaws\.com/workspaces/"
    r"\$\{env:AMP_WORKSPACE_ID\}/api/v1/remote_write$")

Config = dict[str, Any]


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run([require_tool("kubectl"), "kustomize", str(directory)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _collector_configs() -> dict[str, Config]:
    """Every ADOT configuration deploy/ ships, by a readable name."""
    configs: dict[str, Config] = {}
    for build in ("overlays/sidecar-adot", "overlays/adot-daemonset"):
        for doc in _kustomize(KUBE / build):
            name = doc["metadata"]["name"]
            if doc["kind"] == "ConfigMap" and name.endswith("-adot"):
                for key, text in doc["data"].items():
                    configs[f"ConfigMap {name} {key}"] = yaml.safe_load(text)
            elif doc["kind"] == "OpenTelemetryCollector":
                configs[f"OpenTelemetryCollector {name}"] = doc["spec"]["config"]
    return configs


CONFIGS = _collector_configs()
AGENT_CONFIGS = {k: v for k, v in CONFIGS.items() if "controlplane" not in k}
CONTROL_PLANE = next(v for k, v in CONFIGS.items() if "controlplane" in k)


def _component_type(name: str) -> str:
    return name.split("/", 1)[0]


def test_all_forms_are_found() -> None:
    assert set(CONFIGS) == {
        "ConfigMap otel-netreceiver-adot collector.yaml",
        "ConfigMap otel-netreceiver-adot collector-loki.yaml",
        "ConfigMap otel-netreceiver-controlplane-adot collector.yaml",
        "OpenTelemetryCollector otel-netreceiver-adot",
    }


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_only_components_adot_ships(name: str) -> None:
    config = CONFIGS[name]
    for section, allowed in ADOT_COMPONENTS.items():
        for component in config.get(section, {}):
            kind = _component_type(component)
            assert kind not in NOT_IN_ADOT, f"{name}: {section}.{component} is not in ADOT"
            assert kind in allowed, f"{name}: {section}.{component} is not an ADOT component"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_pipelines_use_defined_components_in_a_safe_order(name: str) -> None:
    config = CONFIGS[name]
    service = config["service"]
    assert set(service["extensions"]) <= set(config["extensions"])
    for pipeline in service["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            assert set(pipeline[section]) <= set(config[section]), (name, section)
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter first"
        assert pipeline["processors"][-1] == "batch", f"{name}: batch last"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_remote_write_to_amp_is_signed(name: str) -> None:
    config = CONFIGS[name]
    exporter = config["exporters"]["prometheusremotewrite"]
    assert AMP_REMOTE_WRITE.match(exporter["endpoint"]), exporter["endpoint"]
    assert exporter["auth"]["authenticator"] == "sigv4auth"
    assert config["extensions"]["sigv4auth"]["service"] == "aps"
    assert "sigv4auth" in config["service"]["extensions"]
    assert config["service"]["pipelines"]["metrics"]["exporters"] == ["prometheusremotewrite"]


@pytest.mark.parametrize("name", sorted(AGENT_CONFIGS))
def test_agent_pipelines_receive_otlp_on_explicit_addresses(name: str) -> None:
    config = AGENT_CONFIGS[name]
    protocols = config["receivers"]["otlp"]["protocols"]
    assert set(protocols) == {"http", "grpc"}
    for protocol in protocols.values():
        host = protocol["endpoint"].rsplit(":", 1)[0]
        assert host in {"127.0.0.1", "${env:POD_IP}"}, f"{name}: {protocol['endpoint']}"
    exporter = config["exporters"]["prometheusremotewrite"]
    assert exporter["resource_to_telemetry_conversion"]["enabled"] is True


def test_logs_go_to_cloudwatch_or_loki() -> None:
    logs = {name: config["service"]["pipelines"]["logs"]["exporters"]
            for name, config in AGENT_CONFIGS.items()}
    assert sorted(map(tuple, logs.values())) == [("awscloudwatchlogs",), ("awscloudwatchlogs",),
                                                 ("otlphttp/loki",)]
    loki = next(c for c in AGENT_CONFIGS.values() if "otlphttp/loki" in c["exporters"])
    assert loki["exporters"]["otlphttp/loki"]["endpoint"].endswith("/otlp")


def test_sidecar_collector_listens_where_the_agent_sends() -> None:
    sidecar = AGENT_CONFIGS["ConfigMap otel-netreceiver-adot collector.yaml"]
    assert sidecar["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "127.0.0.1:4318"


def test_control_plane_scrape_targets_each_api_server() -> None:
    jobs = {job["job_name"]: job
            for job in CONTROL_PLANE["receivers"]["prometheus"]["config"]["scrape_configs"]}
    apiserver = jobs["kubernetes-apiservers"]
    assert apiserver["scheme"] == "https"
    assert apiserver["kubernetes_sd_configs"] == [{"role": "endpointslice",
                                                   "namespaces": {"names": ["default"]}}]
    keep = apiserver["relabel_configs"][0]
    assert keep["action"] == "keep" and keep["regex"] == "kubernetes;https"
    assert jobs["kube-scheduler"]["metrics_path"].startswith("/apis/metrics.eks.amazonaws.com/")


def scraped_metric_names() -> set[str]:
    """The metric names the control-plane scrape keeps (its metric_relabel_configs)."""
    names: set[str] = set()
    for job in CONTROL_PLANE["receivers"]["prometheus"]["config"]["scrape_configs"]:
        for relabel in job["metric_relabel_configs"]:
            assert relabel["action"] == "keep" and relabel["source_labels"] == ["__name__"]
            names |= set(relabel["regex"].split("|"))
    return names


# Components ADOT registers only when their feature gate is on (defaults.go); a config using
# one without the gate fails at start.
GATED = {("exporters", "awscloudwatchlogs"): "adot.exporter.awscloudwatchlogs",
         ("receivers", "filelog"): "adot.receiver.filelog",
         ("extensions", "file_storage"): "adot.extension.file_storage"}


def _uses(config_text: str) -> set[str]:
    config = yaml.safe_load(config_text) or {}
    return {gate for (section, name), gate in GATED.items()
            if any(key.split("/")[0] == name for key in (config.get(section) or {}))}


def test_gated_adot_components_run_with_their_feature_gates() -> None:
    sidecar = (KUBE / "overlays/sidecar-adot/adot-sidecar.yaml").read_text()
    configmap = yaml.safe_load((KUBE / "overlays/sidecar-adot/adot-configmap.yaml").read_text())
    needed = set().union(*(_uses(text) for text in configmap["data"].values()))
    assert needed == {"adot.exporter.awscloudwatchlogs"}
    for gate in needed:
        assert f"+{gate}" in sidecar
    crd = yaml.safe_load((KUBE / "overlays/adot-daemonset/opentelemetrycollector.yaml").read_text())
    crd_needed = _uses(yaml.safe_dump(crd["spec"]["config"]))
    assert crd_needed <= {g.lstrip("+") for g in crd["spec"].get("args", {}).get(
        "feature-gates", "").split(",") if g}
