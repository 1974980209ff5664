"""Real namespace pods named through the Kubernetes API double, via a kubeconfig, in the agent."""

from __future__ import annotations

import io
import time

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.k8s_api import KubeApiDouble, make_pod, write_kubeconfig
from tests.support.pods import create_pod, destroy_pod, kernel_supports_test_pods

pytestmark = pytest.mark.root
NODE = "node-under-test"


@pytest.fixture
def cluster(tmp_path):
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    api = KubeApiDouble()
    pods = [create_pod(5, "cgroupfs"), create_pod(6, "systemd")]
    for pod in pods:
        api.add(make_pod(f"web-{pod.index}", "shop", NODE, uid=pod.uid, ip=pod.pod_ip,
                         labels={"app": "web"}))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    yield api, pods, kubeconfig
    for pod in pods:
        destroy_pod(pod)
    api.close()


def _labels_by_uid(agent: Agent) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for series in agent.store.snapshot().metrics:
        for point in series.points:
            labels = dict(point.attributes)
            if "k8s.pod.uid" in labels:
                found[labels["k8s.pod.uid"]] = labels
    return found


def _when_all_named(agent: Agent, pods: list) -> dict | None:
    labels = _labels_by_uid(agent)
    return labels if all(labels.get(p.uid, {}).get("k8s.pod.name") for p in pods) else None


def _when_unnamed(agent: Agent, uid: str) -> dict | None:
    labels = _labels_by_uid(agent)
    return labels if uid in labels and "k8s.pod.name" not in labels[uid] else None


def _wait(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("condition not reached")


def test_agent_names_namespace_pods_from_the_api_and_degrades_when_a_pod_is_unknown(
        cluster) -> None:
    api, pods, kubeconfig = cluster
    config = f"""
interval: 1s
jitter: 0
node_name: {NODE}
kubernetes: {{kubeconfig: "{kubeconfig}"}}
collectors:
  ena: {{enabled: false}}
  netdev: {{enabled: false}}
  nodenet: {{enabled: false}}
  podnet: {{probes: [snmp, sockstat], verbose: true, labels: [app]}}
exporters:
  console: {{enabled: false}}
"""
    agent = Agent(load_text(config, "k8s.yaml"), {"HOME": "/nonexistent"}, stream=io.StringIO(),
                  metadata=InstanceMetadata())
    agent.start()
    try:
        status = {p.name: p for p in agent.probes()}["kubernetes"]
        assert status.active and str(kubeconfig) in status.reason
        labels = _wait(lambda: _when_all_named(agent, pods))
        for pod in pods:
            assert labels[pod.uid]["k8s.pod.name"] == f"web-{pod.index}"
            assert labels[pod.uid]["k8s.namespace.name"] == "shop"
            assert labels[pod.uid]["k8s.pod.ip"] == pod.pod_ip
            assert labels[pod.uid]["k8s.pod.label.app"] == "web"
        api.delete(pods[0].uid)  # the API forgets the pod while its namespace still exists
        degraded = _wait(lambda: _when_unnamed(agent, pods[0].uid))
        assert degraded[pods[0].uid]["netns.kind"] == "pod"  # still attributed, by UID
        assert degraded[pods[1].uid]["k8s.pod.name"] == "web-6"
        assert all(r["query"].get("fieldSelector") == f"spec.nodeName={NODE}"
                   for r in api.requests)
    finally:
        agent.stop(flush=False)
