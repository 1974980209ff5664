"""The generic ethtool collector on real veth interfaces, cross-checked with `ethtool -S`."""

from __future__ import annotations

import os
import subprocess

import pytest

from otel_netreceiver.collectors.ethtool_source import EthtoolSource
from otel_netreceiver.collectors.ethtool_stats import EthtoolStatsCollector
from otel_netreceiver.config.schema import EthtoolConfig
from otel_netreceiver.ethtool.recording import parse_ethtool_s
from tests.support.tools import require_tool

pytestmark = pytest.mark.root


@pytest.fixture
def veth():
    if os.geteuid() != 0:
        pytest.skip("creating veth interfaces needs root (CAP_NET_ADMIN)")
    a, b = f"onrc{os.getpid() % 10000}a", f"onrc{os.getpid() % 10000}b"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    subprocess.run(["ip", "link", "set", a, "up"], check=True)
    subprocess.run(["ip", "link", "set", b, "up"], check=True)
    yield a, b
    subprocess.run(["ip", "link", "del", a], check=False)


def _ethtool_s(iface: str) -> dict[str, int]:
    out = subprocess.run([require_tool("ethtool"), "-S", iface], check=True, capture_output=True,
                         text=True).stdout
    return dict(parse_ethtool_s(out))


def test_collector_values_equal_ethtool_s_and_filters_apply(veth) -> None:
    a, b = veth
    config = EthtoolConfig(enabled=True, interfaces=["onrc*"], exclude_stats=[])
    collector = EthtoolStatsCollector(config, EthtoolSource.live("/sys"))
    try:
        collection = collector.collect()
        expected = _ethtool_s(a)
    finally:
        collector.close()
    got = {dict(p.attributes)["ethtool.stat"]: p.value for p in collection.points
           if dict(p.attributes)["network.interface.name"] == a}
    assert got == expected
    assert {dict(p.attributes)["ethtool.driver"] for p in collection.points} == {"veth"}
    assert {dict(p.attributes)["network.interface.name"] for p in collection.points} == {a, b}


def test_per_queue_stats_are_excluded_by_default(veth) -> None:
    a, _ = veth
    collector = EthtoolStatsCollector(EthtoolConfig(enabled=True, interfaces=[a]),
                                      EthtoolSource.live("/sys"))
    try:
        names = {dict(p.attributes)["ethtool.stat"] for p in collector.collect().points}
    finally:
        collector.close()
    assert any("queue_" in n for n in _ethtool_s(a))  # veth has per-queue stats...
    assert not any("queue_" in n for n in names)      # ...which the default leaves out
    assert "peer_ifindex" in names


def test_interface_deleted_between_cycles_is_dropped_quietly(veth) -> None:
    a, _ = veth
    collector = EthtoolStatsCollector(EthtoolConfig(enabled=True, interfaces=[a]),
                                      EthtoolSource.live("/sys"))
    try:
        assert collector.collect().points
        subprocess.run(["ip", "link", "del", a], check=True)
        after = collector.collect()
    finally:
        collector.close()
    assert after.points == () and after.errors == ()
