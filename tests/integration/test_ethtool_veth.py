"""The in-process ioctl against real veth interfaces: every stat equals `ethtool -S`.

Needs root to create the veth pair and network namespace (reading needs no
capability: one test proves that by dropping all of them).
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_netreceiver.ethtool import structs
from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.recording import parse_ethtool_s
from otel_netreceiver.ethtool.transport import InterfaceGone, IoctlTransport, NotSupported
from tests.support.ethtool import Counting
from tests.support.tools import require_tool

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
TAG = f"onrt{os.getpid() % 10000}"
ETH_P_EXPERIMENTAL = b"\x88\xb5"  # IEEE 802 local experimental ethertype
READ_IN_CHILD = """
import json, sys
from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.transport import IoctlTransport
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff:")][0]
print(json.dumps({"caps": caps, "stats": EthtoolReader(IoctlTransport()).read_stats(sys.argv[1])}))
"""


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def _ethtool(*args: str, netns: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return _run(*prefix, require_tool("ethtool"), *args)


def _ethtool_s(iface: str, netns: str | None = None) -> list[tuple[str, int]]:
    return parse_ethtool_s(_ethtool("-S", iface, netns=netns))


def _send_frames(iface: str, count: int) -> None:
    """Raw Ethernet frames of 60 payload bytes, so veth's per-queue counters move."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface, 0))
        frame = b"\xff" * 6 + b"\x02\0\0\0\0\x01" + ETH_P_EXPERIMENTAL + bytes(60)
        for _ in range(count):
            sock.send(frame)


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair, up, quiet (no IPv6 chatter), counting received packets per queue."""
    if os.geteuid() != 0:
        pytest.skip("creating veth interfaces needs root (CAP_NET_ADMIN); reading does not")
    a, b = f"{TAG}a", f"{TAG}b"
    _run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    try:
        for name in (a, b):
            knob = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
            if knob.exists():
                knob.write_text("1")
            _run("ip", "link", "set", name, "up")
        # veth counts per-queue rx packets only on its NAPI path: GRO on the
        # receiver, TSO off on the sender (drivers/net/veth.c veth_xmit())
        _ethtool("-K", a, "gro", "on")
        _ethtool("-K", b, "tso", "off")
        yield a, b
    finally:
        subprocess.run(["ip", "link", "del", a], check=False, capture_output=True)




def test_every_stat_equals_ethtool_s_and_driver_equals_ethtool_i(veth) -> None:
    a, b = veth
    _send_frames(b, 9)
    with IoctlTransport() as transport:
        reader = EthtoolReader(transport)
        ours = reader.read_stats(a)
        info = reader.driver(a)
    theirs = _ethtool_s(a)
    assert list(ours.items()) == theirs  # every name, every value, same order
    assert ours["rx_queue_0_xdp_packets"] == 9 and ours["rx_queue_0_xdp_bytes"] == 9 * 60
    assert ours["peer_ifindex"] == socket.if_nametoindex(b)
    fields = dict(line.split(": ", 1) for line in _ethtool("-i", a).splitlines() if ": " in line)
    assert (info.driver, info.version) == (fields["driver"], fields["version"]) == ("veth", "1.0")
    assert info.n_stats == len(ours) == 10


def test_channel_change_rereads_names_and_still_equals_ethtool_s(veth) -> None:
    a, b = veth
    counting = Counting(IoctlTransport())
    reader = EthtoolReader(counting)
    assert len(reader.read_stats(a)) == 10
    _ethtool("-L", a, "rx", "2")  # veth: 1 + 7 per rx queue + 2 per tx queue
    _send_frames(b, 4)
    second = reader.read_stats(a)
    third = reader.read_stats(a)
    assert list(third.items()) == _ethtool_s(a)
    assert len(second) == 17 and "rx_queue_1_xdp_drops" in second
    assert counting.calls == ["GSSET_INFO", "GSTRINGS", "GSTATS"] * 2 + ["GSSET_INFO", "GSTATS"]
    counting.close()


def _read_in_child(prefix: list[str], iface: str) -> dict:
    """EthtoolReader in a fresh interpreter started under ``prefix`` (setpriv, ip netns exec)."""
    out = subprocess.run([*prefix, sys.executable, "-c", READ_IN_CHILD, iface], check=True,
                         capture_output=True, text=True,
                         env=os.environ | {"PYTHONPATH": str(ROOT)}).stdout
    return json.loads(out)


def test_reading_needs_no_capability(veth) -> None:
    a, _ = veth
    # uid 0 but an empty bounding set: the child has no capability at all
    result = _read_in_child([require_tool("setpriv"), "--bounding-set=-all", "--inh-caps=-all"], a)
    assert int(result["caps"], 16) == 0
    assert list(result["stats"].items()) == _ethtool_s(a)


def test_device_is_looked_up_in_the_callers_network_namespace(veth) -> None:
    a, b = veth
    netns = f"{TAG}ns"
    _run("ip", "netns", "add", netns)
    try:
        _run("ip", "link", "set", b, "netns", netns)
        with pytest.raises(InterfaceGone, match=f"ethtool GSSET_INFO on {b}: No such device"):
            EthtoolReader(IoctlTransport()).read_stats(b)
        inside = _read_in_child(["ip", "netns", "exec", netns], b)
        assert list(inside["stats"].items()) == _ethtool_s(b, netns=netns)
        assert EthtoolReader(IoctlTransport()).read_stats(a)["peer_ifindex"] > 0
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)


def test_vanished_interface_raises_interface_gone_naming_it(veth) -> None:
    a, _ = veth
    reader = EthtoolReader(IoctlTransport())
    reader.read_stats(a)
    _run("ip", "link", "del", a)
    with pytest.raises(InterfaceGone, match=f"ethtool GSSET_INFO on {a}: No such device"):
        reader.read_stats(a)


def test_nonexistent_interface_raises_interface_gone_naming_it() -> None:
    reader = EthtoolReader(IoctlTransport())
    with pytest.raises(InterfaceGone, match=f"ethtool GSSET_INFO on {TAG}none: No such device"):
        reader.read_stats(f"{TAG}none")
    with pytest.raises(InterfaceGone, match=f"ethtool GDRVINFO on {TAG}none: No such device") as e:
        reader.driver(f"{TAG}none")
    assert e.value.errno == errno.ENODEV and e.value.ifname == f"{TAG}none"


def test_kernels_answer_to_a_stale_count_is_a_count_mismatch(veth) -> None:
    a, _ = veth
    transport = IoctlTransport()
    for asked in (3, 25):  # fewer and more than the driver's 10
        buf = transport.call(a, structs.ETHTOOL_GSTATS, structs.pack_gstats_request(asked))
        with pytest.raises(structs.CountMismatch) as caught:
            structs.parse_gstats(buf, asked)
        # 6.18 answers 0; kernels that write the current count answer 10 (into our
        # scratch buffer, so asking for 3 cannot overrun the caller's buffer)
        assert caught.value.returned in (0, 10)
    transport.close()


def test_lo_has_no_driver_statistics() -> None:
    transport = IoctlTransport()
    assert EthtoolReader(transport).read_stats("lo") == {}
    with pytest.raises(NotSupported, match="ethtool GSTATS on lo: Operation not supported"):
        transport.call("lo", structs.ETHTOOL_GSTATS, structs.pack_gstats_request(1))
    transport.close()


@pytest.mark.parametrize("name", ["x" * 16, "", "eth0\0x"])
def test_bad_names_are_refused_before_the_kernel(name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"interface name {name!r} is not 1..15")):
        IoctlTransport().call(name, structs.ETHTOOL_GSSET_INFO, structs.pack_sset_info_request())


def test_one_socket_is_reused_and_close_releases_it() -> None:
    before = len(os.listdir("/proc/self/fd"))
    transport = IoctlTransport()
    reader = EthtoolReader(transport)
    for _ in range(50):
        reader.read_stats("lo")
    assert len(os.listdir("/proc/self/fd")) == before + 1
    transport.close()
    assert len(os.listdir("/proc/self/fd")) == before
