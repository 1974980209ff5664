"""deploy/kubernetes: the kustomize builds render, validate and keep the agent least-privileged.

`kubectl kustomize` renders offline; the Kubernetes OpenAPI schemas come from the PyPI package
kubernetes-validate (strict mode: unknown fields are errors). Custom resources it has no schema
for (OpenTelemetryCollector, RuleGroupsNamespace, AlertManagerDefinition) are checked here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parent.parent.parent
KUBE = ROOT / "deploy/kubernetes"
OVERLAYS = ("overlays/sidecar-adot", "overlays/adot-daemonset")
BUILDS = ("base", *OVERLAYS, "control-plane", "aws")
COMPONENTS = ("components/ebpf", "components/fd-io-probes")
AMP_BUILD = ROOT / "deploy/amp"
CONTAINERFILE = ROOT / "deploy/image/Containerfile"
# The oldest Kubernetes these manifests need (native sidecars, recursiveReadOnly fields) and a
# current one; EKS standard support spans about four minor versions.
K8S_VERSIONS = ("1.30", "1.34")
CUSTOM_KINDS = {"OpenTelemetryCollector", "RuleGroupsNamespace", "AlertManagerDefinition"}
AGENT_CAPABILITIES = {"SYS_PTRACE"}
COMPONENT_CAPABILITIES = {"components/ebpf": {"BPF", "PERFMON", "SYS_RESOURCE"},
                          "components/fd-io-probes": {"DAC_READ_SEARCH"}}
# The one host path the agent writes: the node API's Unix socket (docs/node-api.md), which
# application pods mount read-only. Nothing else on the host is writable to the agent.
WRITABLE_HOST_PATHS = {"/run/otel-netreceiver"}
NODE_API_SOCKET = "/run/otel-netreceiver/api.sock"
NODE_API_PORT = 19102
ROLE_ARN = re.compile(r"^arn:aws:iam::\d{12}:role/[\w+=,.@-]+$")

Manifest = dict[str, Any]


def _kustomize(directory: Path) -> list[Manifest]:
    kubectl = require_tool("kubectl")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {directory}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _with_components(overlay: str, components: tuple[str, ...], tmp: Path) -> list[Manifest]:
    """Render an overlay plus components through a throwaway kustomization (relative paths:
    kustomize refuses absolute ones)."""
    def rel(path: str) -> str:
        return os.path.relpath(KUBE / path, tmp)
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump(
        {"resources": [rel(overlay)], "components": [rel(c) for c in components]}))
    return _kustomize(tmp)


def _kubernetes_validate() -> ModuleType:
    try:
        import kubernetes_validate
    except ImportError as exc:  # a broken test setup, not an absent feature: fail
        raise RuntimeError("the PyPI package kubernetes-validate is missing: "
                           "pip install 'kubernetes-validate>=1.30'") from exc
    return kubernetes_validate


def _find(docs: list[Manifest], kind: str, name: str) -> Manifest:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _agent(docs: list[Manifest]) -> Manifest:
    return _find(docs, "DaemonSet", "otel-netreceiver")


def _container(pod: Manifest, name: str) -> Manifest:
    containers = pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])
    return next(c for c in containers if c["name"] == name)


def _walk(node: object, path: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {build: _kustomize(KUBE / build) for build in BUILDS}


@pytest.fixture(scope="module")
def with_components(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Manifest]]:
    return {overlay: _with_components(overlay, COMPONENTS, tmp_path_factory.mktemp("k"))
            for overlay in OVERLAYS}


# --- rendering and schemas -------------------------------------------------------------------

@pytest.mark.parametrize("build", BUILDS)
def test_kustomize_build_renders(rendered: dict[str, list[Manifest]], build: str) -> None:
    assert rendered[build], f"{build} rendered nothing"
    for doc in rendered[build]:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc


def test_amp_build_renders_with_the_workspace_id() -> None:
    docs = _kustomize(AMP_BUILD)
    assert {d["kind"] for d in docs} == {"RuleGroupsNamespace", "AlertManagerDefinition"}
    # one RuleGroupsNamespace per rule-groups file in deploy/amp (none left out of the
    # kustomization), plus the Alertmanager definition
    groups = sorted(AMP_BUILD.glob("rule-groups-namespace*.yaml"))
    assert len(groups) >= 8  # ENA, pod network, agent health, control plane, eBPF, SDK, DNS, peers
    assert sum(d["kind"] == "RuleGroupsNamespace" for d in docs) == len(groups)
    assert sum(d["kind"] == "AlertManagerDefinition" for d in docs) == 1
    for doc in docs:
        assert doc["spec"]["workspaceID"].startswith("ws-"), doc["metadata"]["name"]


def _validate_all(docs: list[Manifest], version: str) -> list[str]:
    validator = _kubernetes_validate()
    problems = []
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue  # no OpenAPI schema: test_custom_resources_have_their_required_fields
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            validator.validate(doc, version, strict=True)
        except validator.ValidationError as exc:
            problems.append(f"{where}: {exc.message} at {list(exc.absolute_path)}")
        except validator.SchemaNotFoundError as exc:
            problems.append(f"{where}: {exc.message}")
    return problems


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("build", BUILDS)
def test_manifests_validate_against_kubernetes_schemas(
        rendered: dict[str, list[Manifest]], build: str, version: str) -> None:
    assert not _validate_all(rendered[build], version)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_with_components_validate(
        with_components: dict[str, list[Manifest]], overlay: str, version: str) -> None:
    assert not _validate_all(with_components[overlay], version)


def test_the_validator_rejects_an_unknown_field() -> None:
    validator = _kubernetes_validate()
    bad = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}, "bogus": 1}
    with pytest.raises(validator.ValidationError):
        validator.validate(bad, K8S_VERSIONS[0], strict=True)


def test_custom_resources_have_their_required_fields(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["overlays/adot-daemonset"]
    collector = _find(docs, "OpenTelemetryCollector", "otel-netreceiver-adot")
    assert collector["apiVersion"] == "opentelemetry.io/v1beta1"
    spec = collector["spec"]
    assert spec["mode"] == "daemonset"
    assert spec["image"].startswith("public.ecr.aws/aws-observability/aws-otel-collector:v")
    assert isinstance(spec["config"], dict), "v1beta1 takes config as an object, not a string"
    assert set(spec["config"]) >= {"receivers", "processors", "exporters", "service"}
    account = _find(docs, "ServiceAccount", spec["serviceAccount"])
    assert ROLE_ARN.match(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"])
    for port in spec["ports"]:
        assert set(port) <= {"name", "port", "hostPort", "protocol", "targetPort"}, port
    for doc in _kustomize(AMP_BUILD):
        assert doc["apiVersion"] == "prometheusservice.services.k8s.aws/v1alpha1"
        assert isinstance(doc["spec"]["configuration"], str)
        if doc["kind"] == "RuleGroupsNamespace":
            assert doc["spec"]["name"] == doc["metadata"]["name"]


# --- least privilege -------------------------------------------------------------------------

@pytest.mark.parametrize("build", BUILDS)
def test_nothing_is_privileged(rendered: dict[str, list[Manifest]], build: str) -> None:
    for path, value in _walk(rendered[build]):
        if path.endswith((".privileged", ".allowPrivilegeEscalation")):
            assert value is False, f"{build}: {path} = {value}"


def test_overlays_with_components_are_not_privileged(
        with_components: dict[str, list[Manifest]]) -> None:
    for overlay, docs in with_components.items():
        for path, value in _walk(docs):
            if path.endswith(".privileged"):
                assert value is False, f"{overlay}: {path}"


def test_agent_pod_shares_only_the_host_namespaces_it_needs(
        rendered: dict[str, list[Manifest]]) -> None:
    pod = _agent(rendered["base"])["spec"]["template"]
    assert pod["spec"]["hostNetwork"] is True   # ENA ioctl in the node's network namespace
    assert pod["spec"]["hostPID"] is True       # every pod's /proc/<pid>/ns/net
    assert "hostIPC" not in pod["spec"]
    assert pod["spec"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"


def test_agent_capabilities_are_named_not_privileged(rendered: dict[str, list[Manifest]]) -> None:
    security = _container(_agent(rendered["base"])["spec"]["template"], "agent")["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(security["capabilities"]["add"]) == AGENT_CAPABILITIES
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("component", COMPONENTS)
def test_components_add_only_their_capabilities(component: str, tmp_path: Path) -> None:
    docs = _with_components("base", (component,), tmp_path)
    agent = _container(_agent(docs)["spec"]["template"], "agent")
    added = set(agent["securityContext"]["capabilities"]["add"])
    assert added == AGENT_CAPABILITIES | COMPONENT_CAPABILITIES[component]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_host_path_but_the_node_api_socket_is_mounted_read_only(
        with_components: dict[str, list[Manifest]], overlay: str) -> None:
    pod = _agent(with_components[overlay])["spec"]["template"]["spec"]
    host_volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert set(host_volumes.values()) >= {"/proc", "/sys", "/sys/fs/cgroup", "/sys/kernel/btf",
                                          "/sys/kernel/tracing", "/lib/modules", "/usr/src"}
    for container in pod["containers"] + pod.get("initContainers", []):
        for mount in container.get("volumeMounts", []):
            if mount["name"] in host_volumes:
                if host_volumes[mount["name"]] in WRITABLE_HOST_PATHS:
                    assert container["name"] == "agent", f"{container['name']}: {mount}"
                    continue
                assert mount.get("readOnly") is True, f"{container['name']}: {mount}"


def test_rbac_is_get_list_watch_on_pods_nodes_and_services_only(
        rendered: dict[str, list[Manifest]]) -> None:
    """Read-only, core group, exactly pods (its node's, by field selector), nodes (the
    zone sources' Node watch) and services (the Service watch's ClusterIPs): no other
    resource, no write verb."""
    role = _find(rendered["base"], "ClusterRole", "otel-netreceiver")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["get", "list", "watch"]},
                             {"apiGroups": [""], "resources": ["nodes"],
                              "verbs": ["get", "list", "watch"]},
                             {"apiGroups": [""], "resources": ["services"],
                              "verbs": ["get", "list", "watch"]}]
    binding = _find(rendered["base"], "ClusterRoleBinding", "otel-netreceiver")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "otel-netreceiver",
                                    "namespace": "otel-netreceiver"}]


def test_control_plane_rbac_reads_metrics_and_discovers_in_default_only(
        rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["control-plane"]
    cluster = _find(docs, "ClusterRole", "otel-netreceiver-controlplane-metrics")
    for rule in cluster["rules"]:
        assert rule["verbs"] == ["get"], rule
    role = _find(docs, "Role", "otel-netreceiver-controlplane-discovery")
    assert role["metadata"]["namespace"] == "default"
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


# --- comments justify every privilege (sources: kustomize drops comments) ----------------------

def _source_files() -> list[Path]:
    return sorted(p for p in KUBE.rglob("*.yaml") if p.name != "kustomization.yaml")


def _comment_block_above(lines: list[str], index: int) -> str:
    """The comment lines directly above lines[index] (a list item may sit under its key)."""
    block: list[str] = []
    i = index - 1
    while i >= 0 and lines[i].strip().startswith("#"):
        block.insert(0, lines[i].strip().lstrip("#").strip())
        i -= 1
    return " ".join(block)


def _capability_items(lines: list[str]) -> Iterator[tuple[int, str]]:
    in_add = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped in {"add:", "capabilities:", "drop:"} or stripped.startswith("drop:"):
            in_add = stripped == "add:"
            continue
        if in_add and re.fullmatch(r"- [A-Z_]+", stripped):
            yield i, stripped[2:]
        elif in_add and stripped and not stripped.startswith("#"):
            in_add = False
    for i, line in enumerate(lines):  # JSON patches of the components
        match = re.fullmatch(r"\s*value: ([A-Z_]+)", line)
        if match and "capabilities/add" in lines[i - 1]:
            yield i - 2, match.group(1)


def test_every_capability_has_a_justification_comment() -> None:
    seen = set()
    for path in _source_files():
        lines = path.read_text().splitlines()
        for index, capability in _capability_items(lines):
            comment = _comment_block_above(lines, index)
            assert comment.startswith(f"{capability}:") and len(comment) > 40, (
                f"{path.relative_to(ROOT)}:{index + 1}: {capability} needs a comment "
                f"'# {capability}: why' right above it")
            seen.add(capability)
    assert seen >= AGENT_CAPABILITIES | set().union(*COMPONENT_CAPABILITIES.values())


def test_every_host_path_has_a_justification_comment() -> None:
    count = 0
    for path in _source_files():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != "hostPath:":
                continue
            item = i - 1  # "- name: x" of this volume
            assert lines[item].strip().startswith("- name:"), f"{path}:{i}"
            host = lines[i + 1].split("path:", 1)[1].strip()
            comment = _comment_block_above(lines, item)
            mode = "writable" if host in WRITABLE_HOST_PATHS else "read-only"
            assert comment.startswith(f"hostPath: {host} ") and mode in comment, (
                f"{path.relative_to(ROOT)}:{item + 1}: hostPath {host} needs a comment "
                f"'# hostPath: {host} ({mode} ...): why' above its volume")
            count += 1
    assert count >= 7


# --- the agent's pod ---------------------------------------------------------------------------

def test_agent_config_in_the_configmap_is_valid(rendered: dict[str, list[Manifest]],
                                                tmp_path: Path) -> None:
    config = _find(rendered["base"], "ConfigMap", "otel-netreceiver-config")["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(config)
    result = subprocess.run([sys.executable, "-m", "otel_netreceiver", "check-config", str(path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = yaml.safe_load(config)
    assert loaded["proc_root"] == "/host/proc" and loaded["sys_root"] == "/host/sys"
    assert "otlp" not in loaded.get("exporters", {}), "the overlays set the endpoint"


def test_agent_mounts_match_its_configured_roots(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["base"]
    config = yaml.safe_load(_find(docs, "ConfigMap", "otel-netreceiver-config")
                            ["data"]["config.yaml"])
    pod = _agent(docs)["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in _container({"spec": pod}, "agent")["volumeMounts"]}
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert host[mounts[config["proc_root"]]] == "/proc"
    assert host[mounts[config["sys_root"]]] == "/sys"
    assert host[mounts[config["collectors"]["podnet"]["cgroup_root"]]] == "/sys/fs/cgroup"


def test_agent_probes_env_and_scheduling(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["base"]
    pod = _agent(docs)["spec"]["template"]
    agent = _container(pod, "agent")
    config = yaml.safe_load(_find(docs, "ConfigMap", "otel-netreceiver-config")
                            ["data"]["config.yaml"])
    prometheus = config["exporters"]["prometheus"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = agent[probe]["httpGet"]
        assert (get["path"], get["port"], get["host"]) == (path, prometheus["port"],
                                                           prometheus["host"])
    env = {e["name"]: e for e in agent["env"]}
    for name in ("K8S_NODE_NAME", "NODE_NAME"):
        assert env[name]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert pod["spec"]["tolerations"] == [{"operator": "Exists"}]
    priority = _find(docs, "PriorityClass", pod["spec"]["priorityClassName"])
    assert 0 < priority["value"] < 2_000_000_000
    resources = agent["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_node_api_listens_on_the_host_ip_and_a_socket_in_the_writable_host_path(
        rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["base"]
    pod = _agent(docs)["spec"]["template"]["spec"]
    agent = _container({"spec": pod}, "agent")
    config = yaml.safe_load(_find(docs, "ConfigMap", "otel-netreceiver-config")
                            ["data"]["config.yaml"])["correlation"]
    assert config["enabled"] is True and "host" not in config, "host comes from status.hostIP"
    env = {e["name"]: e for e in agent["env"]}
    assert env["OTEL_NETRECEIVER_API_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    ports = {p["name"]: p for p in agent["ports"]}
    assert ports["node-api"] == {"name": "node-api", "containerPort": NODE_API_PORT,
                                 "hostPort": NODE_API_PORT, "protocol": "TCP"}
    assert config["port"] == NODE_API_PORT and config["socket"] == NODE_API_SOCKET
    host = {v["name"]: v["hostPath"] for v in pod["volumes"] if "hostPath" in v}
    mount = next(m for m in agent["volumeMounts"]
                 if m["mountPath"] == str(Path(NODE_API_SOCKET).parent))
    assert host[mount["name"]] == {"path": "/run/otel-netreceiver", "type": "DirectoryOrCreate"}
    assert not mount.get("readOnly"), "the agent creates the socket there"
    writable = {host[m["name"]]["path"] for m in agent["volumeMounts"]
                if m["name"] in host and not m.get("readOnly")}
    assert writable == WRITABLE_HOST_PATHS


def test_agent_args_match_the_image() -> None:
    containerfile = CONTAINERFILE.read_text()
    cmd = re.search(r"^CMD (\[.*\])$", containerfile, re.M)
    entry = re.search(r"^ENTRYPOINT (\[.*\])$", containerfile, re.M)
    assert cmd and entry
    docs = _kustomize(KUBE / "base")
    agent = _container(_agent(docs)["spec"]["template"], "agent")
    assert agent["args"] == yaml.safe_load(cmd.group(1))
    assert yaml.safe_load(entry.group(1)) == ["otel-netreceiver"]
    mount = next(m for m in agent["volumeMounts"] if m["name"] == "config")
    assert agent["args"][-1].startswith(mount["mountPath"] + "/")


def test_the_image_installs_like_the_repository_scripts() -> None:
    text = CONTAINERFILE.read_text()
    assert "ARG DEBIAN_RELEASE=bookworm" in text
    assert re.search(r"^FROM debian:\$\{DEBIAN_RELEASE\}-slim", text, re.M)
    assert "python3-venv" in text and "python3 -m venv" in text
    # the project's wheels, built by scripts/build-image.sh; nothing from an index
    assert re.search(r"pip install .*--no-index", text)
    assert "--mount=type=bind,source=wheels" in text
    assert "python3-bpfcc" in text  # Debian's bcc, as scripts/dev.sh links it (WITH_BCC=1)


# --- overlays: where the agent sends ----------------------------------------------------------

def test_sidecar_overlay_sends_to_the_collector_on_localhost(
        rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["overlays/sidecar-adot"]
    pod = _agent(docs)["spec"]["template"]
    env = {e["name"]: e.get("value") for e in _container(pod, "agent")["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    adot = _container(pod, "adot")
    assert adot["restartPolicy"] == "Always", "native sidecar: outlives the agent's last export"
    assert adot["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["fsGroup"] == adot["securityContext"]["runAsUser"]
    account = _find(docs, "ServiceAccount", "otel-netreceiver")
    assert ROLE_ARN.match(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"])


def test_daemonset_overlay_sends_to_the_collector_on_the_host_ip(
        rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["overlays/adot-daemonset"]
    env = _container(_agent(docs)["spec"]["template"], "agent")["env"]
    names = [e["name"] for e in env]
    host_ip = env[names.index("HOST_IP")]
    assert host_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    endpoint = env[names.index("OTEL_EXPORTER_OTLP_ENDPOINT")]
    assert endpoint["value"] == "http://$(HOST_IP):4318"
    assert names.index("HOST_IP") < names.index("OTEL_EXPORTER_OTLP_ENDPOINT")
    collector = _find(docs, "OpenTelemetryCollector", "otel-netreceiver-adot")
    assert {p["hostPort"] for p in collector["spec"]["ports"]} == {4317, 4318}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_placeholder_is_left_in_an_overlay(rendered: dict[str, list[Manifest]],
                                              overlay: str) -> None:
    text = yaml.safe_dump_all(rendered[overlay])
    assert "IRSA_ROLE_ARN\n" not in text and ": IRSA_ROLE_ARN" not in text
    accounts = [d for d in rendered[overlay] if d["kind"] == "ServiceAccount"
                and "eks.amazonaws.com/role-arn" in d["metadata"].get("annotations", {})]
    assert len(accounts) == 2
    for account in accounts:
        assert ROLE_ARN.match(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"])
