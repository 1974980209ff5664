"""ENA allowances end to end: agent → OTLP/HTTP → vmagent → remote write → Prometheus → rules.

This machine has no ENA NIC, so the ENA source replays the AWS documentation's
real `ethtool -S` sample, encoded as the ioctl's response bytes, with the
link-local counter growing from the fourth read on (as on a node whose DNS
traffic hits the 1024 packets/s ENI limit). Everything after the ioctl is
real: the agent's parser, store, OTLP encoder and HTTP transport, vmagent's
OTLP receiver and Prometheus naming, Prometheus's remote-write receiver, and
rule evaluation of both deploy/rules/ena-allowances.rules.yaml and the EKS
guide's original node_net_ethtool rules.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from otel_netreceiver.cloud.imds import InstanceMetadata
from otel_netreceiver.config.loader import load_text
from otel_netreceiver.runtime.agent import Agent
from tests.support.backends import start_prometheus, start_vmagent
from tests.support.ena_replay import write_growing_recording

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parent.parent.parent
RULES = [ROOT / "deploy/rules/ena-allowances.rules.yaml",
         ROOT / "deploy/rules/guide-node-net-ethtool.rules.yaml"]
LINKLOCAL_STEP = 100  # packets shaped per agent cycle once throttling starts


@pytest.fixture
def pipeline(tmp_path):
    prometheus = start_prometheus(tmp_path / "prometheus", rule_files=RULES,
                                  evaluation_interval="1s")
    vmagent = start_vmagent(tmp_path / "vmagent", remote_write_url=prometheus.remote_write_url)
    yield prometheus, vmagent
    vmagent.stop()
    prometheus.stop()


def _agent(tmp_path: Path, otlp_base: str) -> Agent:
    recording = tmp_path / "ena-throttled.json"
    write_growing_recording(recording, grow="linklocal_allowance_exceeded",
                            start_frame=3, step=LINKLOCAL_STEP, frames=400)
    config = f"""
interval: 1s
jitter: 0
node_name: e2e-node
sys_root: /nonexistent
collectors:
  ena:
    replay: {recording}
  netdev:
    enabled: false
exporters:
  interval: 1s
  otlp:
    endpoint: {otlp_base}
    protocol: http/protobuf
"""
    return Agent(load_text(config, "e2e.yaml"), {}, stream=io.StringIO(),
                 metadata=InstanceMetadata())


def test_ena_series_arrive_under_prometheus_names_and_rules_fire(pipeline, tmp_path) -> None:
    prometheus, vmagent = pipeline
    agent = _agent(tmp_path, vmagent.otlp_base_url)
    agent.start()
    try:
        linklocal = 'aws_ena_allowance_exceeded_total{aws_ena_allowance="linklocal"}'
        result = prometheus.wait_for(linklocal, lambda r: r and float(r[0]["value"][1]) >= 500,
                                     timeout=60)
        labels = result[0]["metric"]
        assert labels["network_interface_name"] == "eth0"
        assert labels["service_instance_id"] == "e2e-node"
        for allowance in ("bw_in", "bw_out", "pps", "conntrack"):
            flat = prometheus.query(
                f'aws_ena_allowance_exceeded_total{{aws_ena_allowance="{allowance}"}}')
            assert [float(r["value"][1]) for r in flat] == [0.0], allowance
        available = prometheus.query("aws_ena_conntrack_allowance_available")
        assert float(available[0]["value"][1]) == 450878
        compat = prometheus.query(
            'node_net_ethtool{device="eth0",type="linklocal_allowance_exceeded"}')
        assert float(compat[0]["value"][1]) >= 500
        # the rate Prometheus computes is the replay's slope: LINKLOCAL_STEP per 1 s cycle
        rate = prometheus.query(f"rate({linklocal}[10s])")
        assert 0.5 * LINKLOCAL_STEP <= float(rate[0]["value"][1]) <= 1.5 * LINKLOCAL_STEP

        wanted = {"EnaLinkLocalAllowanceExceeded", "LinkLocalAllowanceExceeded"}
        alerts = prometheus.wait_for('ALERTS{alertstate="firing"}',
                                     lambda r: wanted <= {a["metric"]["alertname"] for a in r},
                                     timeout=90)
        names = {a["metric"]["alertname"] for a in alerts}
        for quiet in ("EnaPpsAllowanceExceeded", "EnaBwInAllowanceExceeded",
                      "EnaBwOutAllowanceExceeded", "EnaConntrackAllowanceExceeded",
                      "PPSAllowanceExceeded", "BWINAllowanceExceeded"):
            assert quiet not in names
        ours = next(a for a in alerts
                    if a["metric"]["alertname"] == "EnaLinkLocalAllowanceExceeded")
        assert ours["metric"]["network_interface_name"] == "eth0"
        recorded = prometheus.query("metric:linklocal_allowance_exceeded")
        assert recorded and float(recorded[0]["value"][1]) > 0
    finally:
        agent.stop()
