"""The agent's image, built here and run as the DaemonSet runs it.

scripts/build-image.sh builds deploy/image/Containerfile with podman, with and without bcc,
from a Debian base made by debootstrap (no registry is reachable here) and this checkout's
wheels installed offline. Each image runs with the pod spec that deploy/kubernetes renders
for it (base, or base plus components/ebpf): the same image name, host namespaces, user,
capabilities, seccomp profile, read-only root, host mounts, environment and limits,
translated by tests/support/podman.py from the rendered YAML, so the manifests and this test
cannot drift apart. Inside, ``probes`` must show what it shows on the host with the same
configuration, and ``once`` must find this node's pods.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_netreceiver import __version__
from tests.support.podman import HostSide, run_args, write_runtime_default
from tests.support.pods import kernel_supports_test_pods, pod_pair
from tests.support.tools import require_tool

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parent.parent.parent
KUBE = ROOT / "deploy/kubernetes"
VARIANTS = {"plain": (), "bcc": ("components/ebpf",)}  # image -> components rendered with it
CONTAINER = "agent"
# docs/deploy.md, "The image": the sizes it reports, within this fraction of the measured ones
SIZE_TOLERANCE = 0.15
# Capability numbers (include/uapi/linux/capability.h), bit n of /proc/<pid>/status CapEff
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE")

Manifest = dict[str, Any]


def _render(components: tuple[str, ...], where: Path) -> list[Manifest]:
    """`kubectl kustomize` of the base plus components (relative paths: kustomize refuses
    absolute ones)."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(KUBE / "base", where)],
        "components": [os.path.relpath(KUBE / c, where) for c in components]}))
    result = subprocess.run([require_tool("kubectl"), "kustomize", str(where)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


class Deployment:
    """One rendered variant: the agent's pod spec, its configuration and the host side."""

    def __init__(self, docs: list[Manifest], tmp: Path) -> None:
        daemonset = next(d for d in docs if d["kind"] == "DaemonSet")
        self.pod: Manifest = daemonset["spec"]["template"]["spec"]
        self.container = next(c for c in self.pod["containers"] if c["name"] == CONTAINER)
        self.image: str = self.container["image"]
        config_maps = {}
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                config_maps[doc["metadata"]["name"]] = directory = tmp / doc["metadata"]["name"]
                directory.mkdir()
                for name, text in doc["data"].items():
                    (directory / name).write_text(text)
        created = {v["hostPath"]["path"]: tmp / v["name"] for v in self.pod["volumes"]
                   if v.get("hostPath", {}).get("type") == "DirectoryOrCreate"}
        for directory in created.values():  # the node API's socket directory, not the host's
            directory.mkdir()
        self.host = HostSide(node_name=socket.gethostname(), host_ip="127.0.0.1",
                             seccomp_profile=write_runtime_default(tmp / "seccomp.json"),
                             config_maps=config_maps, created_dirs=created)
        args = self.container["args"]
        assert args[:2] == ["run", "-c"], args
        self.config_path = args[2]

    def run(self, podman: str, *command: str, entrypoint: str = "",
            timeout: float = 300) -> str:
        result = subprocess.run(
            [podman, "run", "--rm", "--replace", "--name", "onr-image-test",
             *run_args(self.pod, CONTAINER, self.host),
             *(["--entrypoint", entrypoint] if entrypoint else []), self.image, *command],
            capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"podman run {command}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def host_config(self, where: Path) -> Path:
        """The ConfigMap's configuration with each /host/... root replaced by the host path
        mounted there: what the agent reads inside the container, read directly."""
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        mounted = {m["mountPath"]: volumes[m["name"]]["hostPath"]["path"]
                   for m in self.container["volumeMounts"] if "hostPath" in volumes[m["name"]]}
        source = Path(self.config_path)
        text = (self.host.config_maps[_config_map(self.pod, source)] / source.name).read_text()
        config = yaml.safe_load(text)
        for section, key in (("", "proc_root"), ("", "sys_root"), ("podnet", "cgroup_root")):
            holder = config["collectors"][section] if section else config
            holder[key] = mounted[holder[key]]
        where.write_text(yaml.safe_dump(config))
        return where


def _config_map(pod: Manifest, config: Path) -> str:
    container = next(c for c in pod["containers"] if c["name"] == CONTAINER)
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    return volume["configMap"]["name"]


@pytest.fixture(scope="module")
def podman() -> str:
    if os.geteuid() != 0:
        pytest.skip("building and running images needs root (podman's store, host namespaces)")
    return require_tool("podman")


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Deployment]:
    made = {}
    for variant, components in VARIANTS.items():
        tmp = tmp_path_factory.mktemp(variant)
        made[variant] = Deployment(_render(components, tmp / "kustomize"), tmp)
    return made


@pytest.fixture(scope="module")
def images(podman: str, deployments: dict[str, Deployment]) -> dict[str, int]:
    """Builds both images under the names the manifests give them; their sizes in bytes."""
    sizes = {}
    for variant, deployment in deployments.items():
        flags = ["--bcc"] if variant == "bcc" else []
        result = subprocess.run(
            ["bash", str(ROOT / "scripts/build-image.sh"), *flags, "--tag", deployment.image],
            capture_output=True, text=True, timeout=1200, env={**os.environ,
                                                                "PYTHON": sys.executable})
        assert result.returncode == 0, result.stderr
        name, size = result.stdout.split()[-2:]
        assert name == deployment.image
        sizes[variant] = int(size)
    print(f"image sizes: {sizes}")
    return sizes


def _probes(output: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in json.loads(output)}


def _ebpf_states(reason: str) -> dict[str, str]:
    """'packetloss: loaded; tcpreset: unavailable (...)' -> {packetloss: loaded, ...}."""
    return dict(re.findall(r"(?:^|; )(\w+): (\w+)", reason))


def _podnet_probes(reason: str) -> str:
    return reason.split("probes: ", 1)[1]


def _host_probes(deployment: Deployment, tmp: Path) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "otel_netreceiver", "probes", "-c",
         str(deployment.host_config(tmp / "host.yaml")), "--format", "json"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk'}",
             "AWS_EC2_METADATA_DISABLED": "true"})
    assert result.returncode == 0, result.stderr
    return _probes(result.stdout)


def test_the_manifests_name_the_images_of_this_version(
        deployments: dict[str, Deployment]) -> None:
    plain, bcc = deployments["plain"].image, deployments["bcc"].image
    assert plain.endswith(f":{__version__}"), plain
    assert bcc == f"{plain}-bpf", "components/ebpf runs the image built with bcc"


@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_in_the_image_are_those_on_the_host(
        podman: str, images: dict[str, int], deployments: dict[str, Deployment],
        variant: str, tmp_path: Path) -> None:
    deployment = deployments[variant]
    inside = _probes(deployment.run(podman, "probes", "-c", deployment.config_path,
                                    "--format", "json"))
    host = _host_probes(deployment, tmp_path)
    assert inside["podnet"]["active"], inside["podnet"]
    assert _podnet_probes(inside["podnet"]["reason"]) == _podnet_probes(host["podnet"]["reason"])
    if variant == "plain":
        assert not inside["ebpf"]["active"]
        assert "bcc" in inside["ebpf"]["reason"], inside["ebpf"]
        return
    states = _ebpf_states(inside["ebpf"]["reason"])
    assert inside["ebpf"]["active"] and "loaded" in states.values(), inside["ebpf"]
    assert states == _ebpf_states(host["ebpf"]["reason"]), (inside["ebpf"], host["ebpf"])


def _capabilities(status: str, field: str) -> set[str]:
    mask = int(re.search(rf"^{field}:\s*([0-9a-f]+)$", status, re.M).group(1), 16)
    return {name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_container_holds_the_named_capabilities_only(
        podman: str, images: dict[str, int], deployments: dict[str, Deployment],
        variant: str) -> None:
    """The named capabilities and nothing else, less what this machine cannot grant at all
    (runc leaves out what is not in its own bounding set: here CAP_SYS_RESOURCE)."""
    deployment = deployments[variant]
    named = set(deployment.container["securityContext"]["capabilities"]["add"])
    status = deployment.run(podman, "/proc/self/status", entrypoint="cat")
    grantable = _capabilities(Path("/proc/self/status").read_text(), "CapBnd")
    if named - grantable:
        print(f"not grantable on this machine: {sorted(named - grantable)}")
    assert _capabilities(status, "CapEff") == named & grantable
    assert _capabilities(status, "CapBnd") == named & grantable
    assert re.search(r"^NoNewPrivs:\s*1$", status, re.M)  # allowPrivilegeEscalation: false
    assert re.search(r"^Seccomp:\s*2$", status, re.M)  # a filter: RuntimeDefault
    assert re.search(r"^Uid:\s*0\s", status, re.M)


def test_the_image_finds_the_pods_of_the_node(
        podman: str, images: dict[str, int], deployments: dict[str, Deployment]) -> None:
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    deployment = deployments["plain"]
    with pod_pair(185) as pods:
        once = json.loads(deployment.run(podman, "once", "-c", deployment.config_path,
                                         "--format", "json"))
    found = {s["attributes"].get("k8s.pod.uid") for s in once["series"]}
    assert {pod.uid for pod in pods} <= found, sorted(u for u in found if u)


def test_the_documented_image_sizes_hold(images: dict[str, int]) -> None:
    text = (ROOT / "docs/deploy.md").read_text()
    for variant, size in images.items():
        match = re.search(rf"^\| image, {variant} \| (\d+) MB \|", text, re.M)
        assert match, f"docs/deploy.md has no '| image, {variant} | N MB |' row"
        documented = int(match.group(1)) * 1_000_000
        assert abs(size - documented) <= SIZE_TOLERANCE * documented, (variant, size)
