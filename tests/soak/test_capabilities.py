"""The agent works with exactly the capabilities deploy/ grants it, and no others.

The DaemonSet adds SYS_PTRACE (deploy/kubernetes/base/daemonset.yaml) and the ebpf component
BPF, PERFMON and SYS_RESOURCE (components/ebpf/capabilities.yaml), everything else dropped.
Here root runs the agent with its bounding set cut to those names (setpriv), so a
capability the code needs but deploy/ does not grant fails this test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pods import kernel_supports_test_pods, pod_pair

pytestmark = [pytest.mark.soak, pytest.mark.root]
DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy" / "kubernetes"


def _granted(*files: Path) -> list[str]:
    names: list[str] = []
    for path in files:
        text = path.read_text()
        names += re.findall(r"(?m)^\s+- ([A-Z_]+)\s*$", text.split("add:", 1)[-1]) \
            if path.name == "daemonset.yaml" else re.findall(r"(?m)value: ([A-Z_]+)$", text)
    return names


def _once(caps: list[str], config: Path) -> dict:
    bounding = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
    out = subprocess.run(["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", "--",
                          sys.executable, "-m", "otel_netreceiver", "once", "-c", str(config),
                          "--format", "json"], capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout)


def _pod_series(doc: dict, uid: str) -> int:
    return sum(1 for s in doc["series"] if s["attributes"].get("k8s.pod.uid") == uid)


def test_the_documented_capabilities_are_enough_and_ebpf_needs_its_component(tmp_path):
    reason = kernel_supports_test_pods() or ("" if shutil.which("setpriv") else "no setpriv")
    if reason:
        pytest.skip(reason)
    base = _granted(DEPLOY / "base" / "daemonset.yaml")
    ebpf = _granted(DEPLOY / "components" / "ebpf" / "capabilities.yaml")
    assert base == ["SYS_PTRACE"] and set(ebpf) == {"BPF", "PERFMON", "SYS_RESOURCE"}
    config = tmp_path / "agent.yaml"
    config.write_text(f"correlation: {{socket: {tmp_path / 'api.sock'}}}\n")
    with pod_pair(97) as (pod, _):
        full = _once(base + ebpf, config)
        plain = _once(base, config)
    status = {s["name"]: s for s in full["probes"]}
    assert status["podnet"]["active"] and status["ebpf"]["active"], status
    assert "packetloss: loaded" in status["ebpf"]["reason"]
    assert _pod_series(full, pod.uid) > 0  # a pod's namespace, read through /proc/<pid>/net
    without = {s["name"]: s for s in plain["probes"]}
    assert not without["ebpf"]["active"] and "CAP_BPF" in without["ebpf"]["reason"]
    assert _pod_series(plain, pod.uid) > 0  # the rest of the agent runs regardless
