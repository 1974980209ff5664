"""The Kubernetes API gone (refusing, then 500s), slow, and hanging, under the threaded agent.

Real namespace pods (tests/support/pods.py) are named through the API double
(tests/support/k8s_api.py, real HTTP list/watch). While the API is away a pod
that appears is still exported, attributed by its cgroup UID and namespace
inode (no name); pods already known keep their names; the watch thread backs
off instead of re-listing in a storm; when the API returns, the watch resumes
from its resourceVersion (no LIST needed) and names the new pod. A hanging API
(accepts, never answers) is cut by the client's request deadline, so names
recover once it answers again.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.config.schema import KubernetesConfig
from otel_netreceiver.k8s.connect import api_factory
from otel_netreceiver.k8s.pods import PodWatcher
from otel_netreceiver.runtime.agent import Agent
from tests.support.k8s_api import KubeApiDouble, make_pod, write_kubeconfig
from tests.support.pods import Pod, create_pod, destroy_pod, kernel_supports_test_pods
from tests.support.soak import record, scaled, wait_until

pytestmark = [pytest.mark.soak, pytest.mark.root]
NODE = "soak-node"


@pytest.fixture
def made():  # type: ignore[no-untyped-def]
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    pods: list[Pod] = []
    yield pods
    for pod in pods:
        destroy_pod(pod)



def _agent(kubeconfig: Path, **watcher: float) -> Agent:
    text = f"""
interval: 1s
jitter: 0
node_name: {NODE}
kubernetes: {{kubeconfig: "{kubeconfig}"}}
collectors:
  ena: {{enabled: false}}
  ebpf: {{enabled: false}}
  netdev: {{enabled: false}}
  nodenet: {{enabled: false}}
  podnet: {{probes: [sockstat], export_quiet: true}}
exporters: {{console: {{enabled: false}}}}
"""
    agent = Agent(load_text(text, "k8s-soak.yaml"), {"HOME": "/nonexistent"},
                  stream=io.StringIO(), metadata=InstanceMetadata())
    if watcher:  # shorter client deadlines, so a hang is cut within CI time
        factory, _ = api_factory(KubernetesConfig(kubeconfig=str(kubeconfig)), {})
        agent.pods = PodWatcher(NODE, factory, **watcher)  # type: ignore[arg-type]
    return agent


def _names(agent: Agent) -> dict[str, str | None]:
    """pod UID → k8s.pod.name (None when exported by identity only)."""
    out: dict[str, str | None] = {}
    for series in agent.store.snapshot().metrics:
        for point in series.points:
            labels = dict(point.attributes)
            if "k8s.pod.uid" in labels:
                out[labels["k8s.pod.uid"]] = labels.get("k8s.pod.name")
    return out


def _add(api: KubeApiDouble, pod: Pod) -> None:
    api.add(make_pod(f"app-{pod.index}", "soak", NODE, uid=pod.uid, ip=pod.pod_ip))


def test_api_gone_then_back_degrades_to_identity_and_recovers_without_a_storm(
        made, tmp_path) -> None:
    api = KubeApiDouble()
    made.append(create_pod(51))
    _add(api, made[0])
    agent = _agent(write_kubeconfig(tmp_path / "kubeconfig", api.url))
    agent.start()
    refused, failing = scaled(4.0, 300.0), scaled(4.0, 300.0)
    try:
        wait_until(lambda: _names(agent).get(made[0].uid) == "app-51", 15)
        port = api.port
        api.close()  # gone: connections refused
        made.append(create_pod(52))  # a pod the agent cannot learn about meanwhile
        degraded = wait_until(lambda: (lambda n: n if made[1].uid in n else None)(
            _names(agent)), 10)
        time.sleep(refused)
        api = KubeApiDouble(port)  # back, but answering 500 for a while
        for pod in made:
            _add(api, pod)
        api.fail_next = 10**6
        time.sleep(failing)
        still = _names(agent)
        api.fail_next = 0
        errors, back = agent.pods.stats.errors, time.monotonic()  # type: ignore[union-attr]
        wait_until(lambda: _names(agent).get(made[1].uid) == "app-52",
                   1.5 * min(60, 2 ** errors) + 5)
        resumed = time.monotonic() - back
        lists = len(api.lists())  # every LIST the returned server saw, failed or not
    finally:
        agent.stop(flush=False)
        api.close()
    outage = refused + failing
    record(f"k8s API gone {outage:.0f}s", failed_attempts=errors, recovered_s=resumed,
           lists_to_returned_server=lists)
    assert degraded[made[1].uid] is None  # exported by UID and inode, no name
    assert degraded[made[0].uid] == "app-51" and still[made[0].uid] == "app-51"
    assert still[made[1].uid] is None
    # exponential backoff (1 s doubling to 60 s, x0.5-1.5 jitter): log2 attempts up to the
    # cap, then one per 30-90 s; a storm would be one per second or per cycle
    assert errors <= _backoff_attempts(outage), errors
    assert lists <= _backoff_attempts(failing), lists


def _backoff_attempts(outage: float) -> float:
    """The most attempts PodWatcher's backoff allows in ``outage`` seconds."""
    return 2 + math.log2(min(outage, 60.0) / 0.5) + max(outage - 60.0, 0.0) / 30.0


def test_slow_and_hanging_api_never_blocks_collection_and_names_recover(made, tmp_path) -> None:
    api = KubeApiDouble()
    made.append(create_pod(53))
    _add(api, made[0])
    agent = _agent(write_kubeconfig(tmp_path / "kubeconfig", api.url), request_timeout=1.0,
                   watch_timeout=2)
    agent.start()
    try:
        wait_until(lambda: _names(agent).get(made[0].uid) == "app-53", 15)
        api.delay = 0.5  # slow, inside the client's deadline
        made.append(create_pod(54))
        _add(api, made[1])
        wait_until(lambda: _names(agent).get(made[1].uid) == "app-54", 10)
        api.delay = 3600.0  # hanging: accepts and never answers
        api.drop_watches()
        time.sleep(2 + 1.0)  # a watch that was let in before the hang has ended by now
        made.append(create_pod(55))
        _add(api, made[2])
        cycles, began = agent.runners["podnet"].stats.cycles, time.monotonic()
        time.sleep(scaled(5.0, 120.0))
        # on a loaded machine the first request deadline may fall after the CI window
        wait_until(lambda: agent.pods.stats.errors >= 1, 20)  # type: ignore[union-attr]
        ran, elapsed = agent.runners["podnet"].stats.cycles - cycles, time.monotonic() - began
        during = _names(agent)
        errors = agent.pods.stats.errors  # type: ignore[union-attr]
        api.delay = 0.0
        back = time.monotonic()
        wait_until(lambda: _names(agent).get(made[2].uid) == "app-55",
                   1.5 * min(60, 2 ** errors) + 5)
        resumed = time.monotonic() - back
    finally:
        agent.stop(flush=False)
        api.close()
    record("k8s API hanging", collection_cycles=ran, elapsed_s=elapsed, timeouts=errors,
           recovered_s=resumed)
    assert ran >= int(elapsed) - 1  # collection kept its period while the API hung
    assert during[made[2].uid] is None and during[made[0].uid] == "app-53"
    assert errors >= 1  # the hang was cut by the request deadline, and counted
