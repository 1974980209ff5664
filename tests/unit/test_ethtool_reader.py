"""The reader's ioctl sequence: names cached, re-read on count change, matched by name."""

from __future__ import annotations

import pytest

from otel_netreceiver.ethtool import structs
from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.transport import InterfaceGone, ReplayTransport

ENA = structs.DriverInfo("ena", "2.13.0g", "", "", 0)


class Counting:
    """Wraps a transport and records the commands issued."""

    def __init__(self, inner: ReplayTransport) -> None:
        self.inner, self.calls = inner, []

    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray:
        self.calls.append(structs.COMMAND_NAMES[command])
        return self.inner.call(ifname, command, buf)

    def close(self) -> None:
        pass


def _reader(frames: list[dict]) -> tuple[EthtoolReader, Counting]:
    counting = Counting(ReplayTransport.from_stats({"eth0": (ENA, frames)}))
    return EthtoolReader(counting), counting


def test_names_are_read_once_while_the_count_is_stable() -> None:
    reader, counting = _reader([{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}])
    assert [reader.read_stats("eth0") for _ in range(3)] == [
        {"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]
    assert counting.calls == ["GSSET_INFO", "GSTRINGS", "GSTATS",
                              "GSSET_INFO", "GSTATS", "GSSET_INFO", "GSTATS"]


def test_count_change_rereads_names_and_order_changes_are_matched_by_name() -> None:
    # a driver upgrade adds a stat and reorders the others
    reader, counting = _reader([{"tx_timeout": 1, "pps_allowance_exceeded": 7},
                                {"pps_allowance_exceeded": 9, "new_stat": 0, "tx_timeout": 2}])
    reader.read_stats("eth0")
    second = reader.read_stats("eth0")
    assert second == {"pps_allowance_exceeded": 9, "new_stat": 0, "tx_timeout": 2}
    assert counting.calls.count("GSTRINGS") == 2


def test_duplicate_names_keep_the_first_value() -> None:
    transport = ReplayTransport.from_stats({"eth0": (ENA, [{"x": 1, "y": 2}])})
    # encode a duplicate by hand: names [x, x], values [1, 2]
    iface = transport._recording.interfaces["eth0"]
    dup = iface.frames[0].__class__(structs.encode_sset_info_response(2),
                                    structs.encode_gstrings_response(["x", "x"]),
                                    structs.encode_gstats_response([1, 2]))
    object.__setattr__(iface, "frames", (dup,))
    assert EthtoolReader(transport).read_stats("eth0") == {"x": 1}


def test_interface_gone_propagates_and_forget_drops_the_cache() -> None:
    reader, counting = _reader([{"a": 1}])
    reader.read_stats("eth0")
    with pytest.raises(InterfaceGone, match="ethtool GSSET_INFO on eth9"):
        reader.read_stats("eth9")
    reader.forget("eth0")
    reader.read_stats("eth0")
    assert counting.calls.count("GSTRINGS") == 2


def test_driver_with_no_stats() -> None:
    reader, _ = _reader([{}])
    assert reader.read_stats("eth0") == {}
    assert reader.driver("eth0").driver == "ena"
