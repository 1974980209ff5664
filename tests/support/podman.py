"""Run a container under podman the way the kubelet would run the DaemonSet's pod spec.

``run_args`` translates the rendered pod spec of deploy/kubernetes (host namespaces, user,
capabilities, seccomp, read-only root, volumes and their mounts, environment, resource
limits) into ``podman run`` options, so a test runs the image with the manifest's privileges
and nothing else. Whatever the translation does not know how to reproduce faithfully (a new
volume type, a fieldRef, privileged) raises instead of being dropped, so the manifests and
the test cannot drift apart silently.

``runtime_default_seccomp`` stands in for the RuntimeDefault profile of the nodes' runtime.
EKS nodes run containerd, whose default profile (contrib/seccomp/seccomp_default.go, since
containerd/containerd#7301; Moby's profiles/seccomp/default.json has the same since
moby/moby#43987) allows bpf() to holders of CAP_BPF and perf_event_open() to holders of
CAP_PERFMON. Podman 4.3's default (containers-common's seccomp.json, bookworm) still allows
both only with CAP_SYS_ADMIN, so it is adapted in exactly those two rules.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PODMAN_SECCOMP = Path("/usr/share/containers/seccomp.json")
# syscall -> the capability containerd's default profile gates it on (besides CAP_SYS_ADMIN)
CAPABILITY_GATED = {"bpf": "CAP_BPF", "perf_event_open": "CAP_PERFMON"}

Manifest = dict[str, Any]


@dataclass(frozen=True)
class HostSide:
    """What the node provides that the manifest only names."""

    node_name: str
    host_ip: str
    seccomp_profile: Path  # RuntimeDefault, as a file podman can load
    config_maps: dict[str, Path] = field(default_factory=dict)  # name -> directory of files
    # hostPath -> directory used instead (only for DirectoryOrCreate, which the kubelet makes)
    created_dirs: dict[str, Path] = field(default_factory=dict)


def runtime_default_seccomp(podman_profile: dict[str, Any]) -> dict[str, Any]:
    """Podman's default profile with bpf and perf_event_open gated as containerd gates them:
    allowed with CAP_SYS_ADMIN (as before) or with their own capability, refused otherwise."""
    profile = copy.deepcopy(podman_profile)
    kept = []
    for rule in profile["syscalls"]:
        gated = [n for n in rule["names"] if n in CAPABILITY_GATED]
        refusal = rule["action"] == "SCMP_ACT_ERRNO" and "CAP_SYS_ADMIN" in rule.get(
            "excludes", {}).get("caps", [])
        if gated and refusal:
            rule = {**rule, "names": [n for n in rule["names"] if n not in CAPABILITY_GATED]}
            for name in gated:  # refused unless the container has either capability
                kept.append({**rule, "names": [name], "excludes": {
                    **rule.get("excludes", {}),
                    "caps": ["CAP_SYS_ADMIN", CAPABILITY_GATED[name]]}})
        if rule["names"]:
            kept.append(rule)
    for name, capability in CAPABILITY_GATED.items():
        kept.append({"names": [name], "action": "SCMP_ACT_ALLOW", "args": [],
                     "includes": {"caps": [capability]}, "excludes": {}})
    profile["syscalls"] = kept
    return profile


def write_runtime_default(where: Path) -> Path:
    where.write_text(json.dumps(runtime_default_seccomp(json.loads(PODMAN_SECCOMP.read_text()))))
    return where


def run_args(pod: Manifest, container_name: str, host: HostSide) -> list[str]:
    """``podman run`` options (before the image name) for one container of a pod spec."""
    container = next(c for c in pod["containers"] if c["name"] == container_name)
    return [*_pod_options(pod, host), *_security_options(container),
            *_mount_options(pod, container, host), *_env_options(container, host),
            *_limit_options(container)]


def _pod_options(pod: Manifest, host: HostSide) -> list[str]:
    if not pod.get("hostNetwork") or not pod.get("hostPID"):
        raise ValueError("only hostNetwork and hostPID pods are translated")
    context = pod.get("securityContext", {})
    options = ["--network", "host", "--pid", "host",
               "--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    seccomp = context.get("seccompProfile", {}).get("type")
    if seccomp != "RuntimeDefault":
        raise ValueError(f"seccompProfile {seccomp!r}: only RuntimeDefault is translated")
    return [*options, "--security-opt", f"seccomp={host.seccomp_profile}"]


def _security_options(container: Manifest) -> list[str]:
    context = container["securityContext"]
    if context.get("privileged"):
        raise ValueError("privileged containers are not translated")
    options = []
    if context.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    if context.get("readOnlyRootFilesystem"):
        # podman would add tmpfs on /tmp, /run and /var/tmp; the kubelet adds none
        options += ["--read-only", "--read-only-tmpfs=false"]
    capabilities = context.get("capabilities", {})
    for dropped in capabilities.get("drop", []):
        options += ["--cap-drop", dropped.lower()]
    for added in capabilities.get("add", []):
        options += ["--cap-add", added.upper()]
    return options


def _mount_options(pod: Manifest, container: Manifest, host: HostSide) -> list[str]:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    options = []
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        target, read_only = mount["mountPath"], bool(mount.get("readOnly"))
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            if volume["emptyDir"].get("medium") != "Memory":
                raise ValueError(f"emptyDir {mount['name']}: only medium Memory is translated")
            options += ["--tmpfs", f"{target}:rw,size={_bytes(size)}" if size else target]
            continue
        source = _volume_source(mount["name"], volume, host)
        # recursiveReadOnly IfPossible: podman 4.3 has no recursive read-only bind mounts, so
        # the kubelet would fall back as here, to a read-only top mount (kubelet's own rule)
        options += ["--volume", f"{source}:{target}:{'ro' if read_only else 'rw'}"]
    return options


def _volume_source(name: str, volume: Manifest, host: HostSide) -> Path:
    if "configMap" in volume:
        return host.config_maps[volume["configMap"]["name"]]
    if "hostPath" in volume:
        path, kind = volume["hostPath"]["path"], volume["hostPath"].get("type", "")
        if kind == "DirectoryOrCreate":
            return host.created_dirs.get(path, Path(path))
        if kind == "Directory" and not Path(path).is_dir():
            raise FileNotFoundError(f"hostPath {path} (volume {name}) is not a directory here")
        return Path(path)
    raise ValueError(f"volume {name}: {sorted(volume)} is not translated")


def _env_options(container: Manifest, host: HostSide) -> list[str]:
    fields = {"spec.nodeName": host.node_name, "status.hostIP": host.host_ip}
    options = []
    for env in container.get("env", []):
        if "value" in env:
            value = env["value"]
        else:
            value = fields[env["valueFrom"]["fieldRef"]["fieldPath"]]
        options += ["--env", f"{env['name']}={value}"]
    return options


def _limit_options(container: Manifest) -> list[str]:
    limits = container.get("resources", {}).get("limits", {})
    options = []
    if "memory" in limits:
        options += ["--memory", str(_bytes(limits["memory"]))]
    if "cpu" in limits:
        cpu = str(limits["cpu"])
        options += ["--cpus", str(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))]
    return options


def _bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (Mi, Gi, Ki or plain bytes) in bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[:-len(suffix)]) * factor
    return int(quantity)
