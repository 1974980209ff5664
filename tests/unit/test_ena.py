"""ENA mapping from the AWS documentation's real `ethtool -S` sample; the collector on replays."""

from __future__ import annotations

from otel_netreceiver.collectors.ena import EnaCollector, ena_points, parse_ena_stats
from otel_netreceiver.collectors.ethtool_source import EthtoolSource
from otel_netreceiver.config.schema import EnaConfig
from otel_netreceiver.ethtool.structs import DriverInfo
from otel_netreceiver.ethtool.transport import ReplayTransport
from tests.support.ena_replay import aws_sample


def _sample() -> dict[str, int]:
    """The checked-in `ethtool -S` text (the AWS troubleshooting doc's real output)."""
    return aws_sample()


def test_real_sample_maps_to_allowances_and_conntrack_available() -> None:
    ena = parse_ena_stats(_sample())
    assert ena.allowances == {"bw_in": 0, "bw_out": 0, "pps": 0, "conntrack": 0, "linklocal": 0}
    assert ena.conntrack_available == 450878
    assert ena.srd == {}  # the sample predates ENA Express


def test_points_carry_interface_eni_and_compat_gauge() -> None:
    stats = _sample() | {"linklocal_allowance_exceeded": 12}
    points = ena_points("ens5", "eni-0f95d3625f5c521cc", parse_ena_stats(stats), stats, True)
    by = {(p.metric.name, p.attributes): p.value for p in points}
    key = ("aws.ena.allowance.exceeded", (("aws.ena.allowance", "linklocal"),
                                          ("aws.eni.id", "eni-0f95d3625f5c521cc"),
                                          ("network.interface.name", "ens5")))
    assert by[key] == 12
    eni_iface = (("aws.eni.id", "eni-0f95d3625f5c521cc"), ("network.interface.name", "ens5"))
    assert by[("aws.ena.conntrack.allowance.available", eni_iface)] == 450878
    compat = ("node_net_ethtool", (("device", "ens5"), ("type", "linklocal_allowance_exceeded")))
    assert by[compat] == 12
    compat_types = {dict(a)["type"] for (n, a) in by if n == "node_net_ethtool"}
    assert compat_types == {"bw_in_allowance_exceeded", "bw_out_allowance_exceeded",
                            "pps_allowance_exceeded", "conntrack_allowance_exceeded",
                            "linklocal_allowance_exceeded", "conntrack_allowance_available"}
    # queue stats never become series
    assert not any("queue" in str(a) for (_, a) in by)


def test_compat_gauge_can_be_switched_off_and_missing_stats_stay_missing() -> None:
    old_driver = {"tx_timeout": 0, "bw_in_allowance_exceeded": 3}  # driver < 2.8.1: no conntrack
    points = ena_points("eth0", None, parse_ena_stats(old_driver), old_driver, False)
    assert [(p.metric.name, dict(p.attributes).get("aws.ena.allowance")) for p in points] == [
        ("aws.ena.allowance.exceeded", "bw_in")]
    assert "aws.eni.id" not in dict(points[0].attributes)


def test_ena_express_stats() -> None:
    stats = {"ena_srd_mode": 1, "ena_srd_tx_pkts": 100, "ena_srd_rx_pkts": 90,
             "ena_srd_eligible_tx_pkts": 120, "ena_srd_resource_utilization": 7}
    by = {(p.metric.name, dict(p.attributes).get("network.io.direction")): p.value
          for p in ena_points("eth0", None, parse_ena_stats(stats), stats, False)}
    assert by == {("aws.ena.srd.mode", None): 1, ("aws.ena.srd.packets", "transmit"): 100,
                  ("aws.ena.srd.packets", "receive"): 90,
                  ("aws.ena.srd.eligible_packets", None): 120,
                  ("aws.ena.srd.resource.utilization", None): 7}


def _source(frames: dict) -> EthtoolSource:
    transport = ReplayTransport.from_stats(frames)
    names = transport.interfaces()
    from otel_netreceiver.collectors.interfaces import InterfaceInfo

    return EthtoolSource(transport, lambda: [InterfaceInfo(n, i + 1, "") for i, n in
                                             enumerate(names)], "test replay")


def test_collector_reads_only_ena_interfaces_through_the_replayed_ioctl() -> None:
    ena = DriverInfo("ena", "2.13.0g", "", "0000:00:05.0", 0)
    veth = DriverInfo("veth", "1.0", "", "", 0)
    sample = _sample()
    source = _source({"eth0": (ena, [sample, sample | {"pps_allowance_exceeded": 40}]),
                      "veth1": (veth, [{"peer_ifindex": 3}])})
    collector = EnaCollector(EnaConfig(), source)
    assert collector.probe().active and "eth0" in collector.probe().reason
    first = {p.metric.name for p in collector.collect().points}
    assert "aws.ena.allowance.exceeded" in first
    second = collector.collect()
    pps = [p.value for p in second.points if dict(p.attributes).get("aws.ena.allowance") == "pps"]
    assert pps == [40]
    assert not any(dict(p.attributes).get("network.interface.name") == "veth1"
                   for p in second.points)


def test_no_ena_interface_is_said_plainly() -> None:
    source = _source({"eth0": (DriverInfo("virtio_net", "1.0", "", "", 0), [{"rx": 1}])})
    status = EnaCollector(EnaConfig(), source).probe()
    assert not status.active
    assert "no ENA interface" in status.reason and "eth0=virtio_net" in status.reason


def test_vanished_interface_is_dropped_quietly_and_recreated_one_restarts() -> None:
    from otel_netreceiver.collectors.interfaces import InterfaceInfo

    ena = DriverInfo("ena", "2.13.0g", "", "", 0)
    sample = _sample()
    transport = ReplayTransport.from_stats({"eth0": (ena, [sample]), "eth1": (ena, [sample])})
    present = [InterfaceInfo("eth0", 2, ""), InterfaceInfo("eth1", 3, "")]
    collector = EnaCollector(EnaConfig(), EthtoolSource(transport, lambda: list(present), "t"))
    first = collector.collect()
    assert {dict(p.attributes).get("network.interface.name") for p in first.points} >= {"eth0",
                                                                                          "eth1"}
    present.pop()  # eth1 hot-unplugged
    second = collector.collect()
    assert second.errors == ()
    assert "eth1" not in {dict(p.attributes).get("network.interface.name") for p in second.points}
    present[0] = InterfaceInfo("eth0", 9, "")  # eth0 recreated: new ifindex
    third = collector.collect()
    restarted_ifaces = {dict(a).get("network.interface.name") or dict(a).get("device")
                        for _, a in third.restarted}
    assert restarted_ifaces == {"eth0"}
    assert collector.collect().restarted == frozenset()
