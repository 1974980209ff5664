"""The in-process ioctl against real veth interfaces: every stat equals `ethtool -S`."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.transport import InterfaceGone, IoctlTransport
from tests.support.tools import require_tool

pytestmark = pytest.mark.root


@pytest.fixture
def veth():
    if os.geteuid() != 0:
        pytest.skip("creating veth interfaces needs root (CAP_NET_ADMIN)")
    a, b = f"onrt{os.getpid() % 10000}a", f"onrt{os.getpid() % 10000}b"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    for name in (a, b):
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
    yield a, b
    subprocess.run(["ip", "link", "del", a], check=False)


def _ethtool(*args: str) -> str:
    return subprocess.run([require_tool("ethtool"), *args], check=True, capture_output=True,
                          text=True).stdout


def _parse_s(text: str) -> dict[str, int]:
    stats = {}
    for line in text.splitlines()[1:]:
        name, _, value = line.strip().rpartition(": ")
        stats[name] = int(value)
    return stats


def test_every_stat_equals_ethtool_s_and_driver_equals_ethtool_i(veth) -> None:
    a, _ = veth
    reader = EthtoolReader(IoctlTransport())
    ours = reader.read_stats(a)
    theirs = _parse_s(_ethtool("-S", a))
    assert ours == theirs
    assert len(ours) > 5
    driver = next(line.split(": ", 1)[1] for line in _ethtool("-i", a).splitlines()
                  if line.startswith("driver:"))
    assert reader.driver(a).driver == driver == "veth"


def test_peer_ifindex_is_the_kernels(veth) -> None:
    a, b = veth
    stats = EthtoolReader(IoctlTransport()).read_stats(a)
    assert stats["peer_ifindex"] == socket.if_nametoindex(b)


def test_vanished_interface_raises_interface_gone_naming_it() -> None:
    with pytest.raises(InterfaceGone, match="ethtool GSSET_INFO on onrnosuch0"):
        EthtoolReader(IoctlTransport()).read_stats("onrnosuch0")


def test_overlong_name_is_refused_before_the_kernel() -> None:
    with pytest.raises(ValueError, match="interface name"):
        IoctlTransport().call("x" * 16, 0x37, bytearray(20))
