"""tests/support/podman.py: the pod spec to `podman run` translation the image test relies on.

What it cannot reproduce must raise (a manifest change then fails the image test instead of
being dropped), and the stand-in for containerd's RuntimeDefault seccomp profile must differ
from podman's in the bpf and perf_event_open rules only.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.support.podman import HostSide, run_args, runtime_default_seccomp

HOST = HostSide(node_name="node-1", host_ip="10.0.0.5", seccomp_profile=Path("/tmp/p.json"),
                config_maps={"cfg": Path("/tmp/cfg")},
                created_dirs={"/run/otel-netreceiver": Path("/tmp/sock")})

# podman's profile in the shape containers-common 0.50 ships it (the rules that matter here)
PODMAN_PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": []},
    {"names": ["bpf", "perf_event_open", "setns"], "action": "SCMP_ACT_ALLOW", "args": [],
     "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["bpf", "perf_event_open", "setns"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
     "args": [], "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
]}


def _pod(**container: object) -> dict:
    agent = {"name": "agent", "image": "img", "args": ["run"],
             "securityContext": {"allowPrivilegeEscalation": False,
                                 "readOnlyRootFilesystem": True,
                                 "capabilities": {"drop": ["ALL"], "add": ["SYS_PTRACE"]}},
             "env": [{"name": "A", "value": "1"},
                     {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
             "volumeMounts": [{"name": "proc", "mountPath": "/host/proc", "readOnly": True},
                              {"name": "config", "mountPath": "/etc/x", "readOnly": True},
                              {"name": "sock", "mountPath": "/run/otel-netreceiver"},
                              {"name": "tmp", "mountPath": "/tmp"}],
             "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}, **container}
    return {"hostNetwork": True, "hostPID": True,
            "securityContext": {"runAsUser": 0, "runAsGroup": 0,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [agent],
            "volumes": [{"name": "proc", "hostPath": {"path": "/proc", "type": "Directory"}},
                        {"name": "config", "configMap": {"name": "cfg"}},
                        {"name": "sock", "hostPath": {"path": "/run/otel-netreceiver",
                                                      "type": "DirectoryOrCreate"}},
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}]}


def test_a_pod_spec_becomes_the_matching_podman_options() -> None:
    args = run_args(_pod(), "agent", HOST)
    pairs = set(itertools.pairwise(args))
    assert {("--network", "host"), ("--pid", "host"), ("--user", "0:0"),
            ("--security-opt", "seccomp=/tmp/p.json"), ("--security-opt", "no-new-privileges"),
            ("--cap-drop", "all"), ("--cap-add", "SYS_PTRACE"),
            ("--volume", "/proc:/host/proc:ro"), ("--volume", "/tmp/cfg:/etc/x:ro"),
            ("--volume", "/tmp/sock:/run/otel-netreceiver:rw"),
            ("--tmpfs", f"/tmp:rw,size={16 << 20}"), ("--env", "A=1"), ("--env", "NODE=node-1"),
            ("--memory", str(256 << 20)), ("--cpus", "0.5")} <= pairs
    assert "--read-only" in args and "--read-only-tmpfs=false" in args


@pytest.mark.parametrize("change", [
    {"securityContext": {"privileged": True}},
    {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}]},
    {"volumeMounts": [{"name": "secret", "mountPath": "/s"}]},
])
def test_what_is_not_translated_raises(change: dict) -> None:
    pod = _pod(**change)
    pod["volumes"].append({"name": "secret", "secret": {"secretName": "s"}})
    with pytest.raises((ValueError, KeyError)):
        run_args(pod, "agent", HOST)


def test_runtime_default_differs_from_podmans_in_bpf_and_perf_event_open_only() -> None:
    rules = runtime_default_seccomp(PODMAN_PROFILE)["syscalls"]

    def rule_for(name: str, action: str, caps_key: str) -> list[list[str]]:
        return [r.get(caps_key, {}).get("caps") for r in rules
                if name in r["names"] and r["action"] == action]

    assert ["CAP_BPF"] in rule_for("bpf", "SCMP_ACT_ALLOW", "includes")
    assert ["CAP_PERFMON"] in rule_for("perf_event_open", "SCMP_ACT_ALLOW", "includes")
    assert rule_for("bpf", "SCMP_ACT_ERRNO", "excludes") == [["CAP_SYS_ADMIN", "CAP_BPF"]]
    assert rule_for("setns", "SCMP_ACT_ERRNO", "excludes") == [["CAP_SYS_ADMIN"]]
    assert rule_for("setns", "SCMP_ACT_ALLOW", "includes") == [["CAP_SYS_ADMIN"]]
    assert PODMAN_PROFILE["syscalls"][2]["names"] == ["bpf", "perf_event_open", "setns"]
