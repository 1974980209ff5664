"""Per-pod counters end to end: a real namespace pod → agent → vmagent → Prometheus.

Checks the quiet-pod design against a real backend: a counter that has never
moved is not sent; when it first moves, Prometheus receives a zero baseline and
then the value, so increase() sees the very first increment.
"""

from __future__ import annotations

import io

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.pods import create_pod, destroy_pod, kernel_supports_test_pods

pytestmark = [pytest.mark.e2e, pytest.mark.root]


@pytest.fixture
def pod():
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    made = create_pod(3, "cgroupfs")
    yield made
    destroy_pod(made)


def test_first_increment_of_a_quiet_pod_counter_reaches_increase(vmagent_pipeline, pod) -> None:
    prometheus, vmagent = vmagent_pipeline
    config = f"""
interval: 1s
jitter: 0
node_name: e2e-node
collectors:
  ena: {{enabled: false}}
  netdev: {{enabled: false}}
  nodenet: {{enabled: false}}
  podnet:
    probes: [snmp]
    include_host: false
exporters:
  otlp: {{endpoint: "{vmagent.otlp_base_url}"}}
"""
    agent = Agent(load_text(config, "e2e.yaml"), {}, stream=io.StringIO(),
                  metadata=InstanceMetadata())
    agent.start()
    try:
        selector = f'{{k8s_pod_uid="{pod.uid}"}}'
        prometheus.wait_for(f"netreceiver_tcp_curr_estab{selector}", bool, timeout=30)
        assert prometheus.query(f"netreceiver_udp_no_ports_total{selector}") == []  # quiet
        pod.exec("python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,"
                 "socket.SOCK_DGRAM)\nfor _ in range(7): s.sendto(b'x', ('127.0.0.1', 9))")
        prometheus.wait_for(f"netreceiver_udp_no_ports_total{selector}",
                            lambda r: bool(r) and float(r[0]["value"][1]) == 7, timeout=30)
        samples = prometheus.query(f"netreceiver_udp_no_ports_total{selector}[1m]")[0]["values"]
        assert [float(v) for _, v in samples][:2] == [0.0, 7.0]  # the baseline, then the value
        rise = prometheus.query(f"increase(netreceiver_udp_no_ports_total{selector}[1m])")
        assert float(rise[0]["value"][1]) >= 7
        labels = prometheus.query(f"netreceiver_udp_no_ports_total{selector}")[0]["metric"]
        assert labels["netns_kind"] == "pod" and labels["service_instance_id"] == "e2e-node"
    finally:
        agent.stop()
