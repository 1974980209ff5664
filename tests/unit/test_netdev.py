"""/proc/net/dev parsing against a checked-in fake /proc tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_netreceiver.collectors.netdev import NetdevCollector
from otel_netreceiver.config.schema import NetdevConfig
from otel_netreceiver.procfs.errors import ParseError
from otel_netreceiver.procfs.netdev import parse_net_dev

FAKE_PROC = str(Path(__file__).parent.parent / "data" / "proc")


def test_parse_fields_in_kernel_order() -> None:
    text = Path(FAKE_PROC, "1", "net", "dev").read_text()
    devs = {d.interface: d for d in parse_net_dev(text)}
    assert set(devs) == {"lo", "eth0", "ens5"}
    assert devs["eth0"].rx["bytes"] == 9876543210
    assert devs["eth0"].rx["drop"] == 17
    assert devs["eth0"].rx["multicast"] == 1200
    assert devs["eth0"].tx["packets"] == 3456789
    assert devs["eth0"].tx["drop"] == 2


@pytest.mark.parametrize("bad", ["eth0: 1 2 3\n", "eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
                                 "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n"])
def test_malformed_line_names_file_and_line(bad: str) -> None:
    with pytest.raises(ParseError, match=r"dev:3: "):
        parse_net_dev("header\nheader\n" + bad, "dev")


def test_collector_emits_direction_attributes_and_honours_excludes() -> None:
    collector = NetdevCollector(NetdevConfig(exclude_interfaces=["lo"]), FAKE_PROC)
    collection = collector.collect()
    values = {(p.metric.name, dict(p.attributes)["network.interface.name"],
               dict(p.attributes)["network.io.direction"]): p.value for p in collection.points}
    assert values[("system.network.io", "eth0", "receive")] == 9876543210
    assert values[("system.network.io", "eth0", "transmit")] == 1234567890
    assert values[("system.network.packet.dropped", "eth0", "receive")] == 17
    assert values[("system.network.errors", "eth0", "transmit")] == 1
    assert not any(iface == "lo" for _, iface, _ in values)
    assert collector.probe().active


def test_missing_proc_is_reported_by_probe(tmp_path) -> None:
    status = NetdevCollector(NetdevConfig(), str(tmp_path)).probe()
    assert not status.active and "not readable" in status.reason
