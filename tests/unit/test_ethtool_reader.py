"""The reader's ioctl sequence, and the replay transport it is tested with.

Names cached while the count is stable, re-read when it changes, values matched
by name, the count-changed-between-ioctls race, vanished interfaces.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from pathlib import Path

import pytest

from otel_netreceiver.ethtool import structs
from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.recording import (
    InterfaceRecording,
    Recording,
    decode_frame,
    frame_from_pairs,
    load_recording,
    record,
)
from otel_netreceiver.ethtool.transport import InterfaceGone, NotSupported, ReplayTransport
from tests.support.ethtool import Counting

DATA = Path(__file__).resolve().parents[1] / "data" / "ethtool"
ENA = structs.DriverInfo("ena", "2.13.0g", "", "0000:00:05.0", 0)




class Scripted:
    """Answers each command from a queue of raw responses, like a kernel mid-reconfiguration."""

    def __init__(self, answers: Mapping[int, list[bytes]]) -> None:
        self.answers = {command: list(queue) for command, queue in answers.items()}
        self.calls: list[str] = []

    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray:
        self.calls.append(structs.command_name(command))
        answer = self.answers[command].pop(0)
        buf[:min(len(buf), len(answer))] = answer[:len(buf)]
        return buf

    def close(self) -> None:
        pass


def _reader(frames: list[dict[str, int]]) -> tuple[EthtoolReader, Counting]:
    counting = Counting(ReplayTransport.from_stats({"eth0": (ENA, frames)}))
    return EthtoolReader(counting), counting


def test_names_are_read_once_while_the_count_is_stable() -> None:
    reader, counting = _reader([{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}])
    assert [reader.read_stats("eth0") for _ in range(3)] == [
        {"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]
    assert counting.calls == ["GSSET_INFO", "GSTRINGS", "GSTATS",
                              "GSSET_INFO", "GSTATS", "GSSET_INFO", "GSTATS"]


def test_count_change_rereads_names_and_reordering_is_matched_by_name() -> None:
    # a driver upgrade adds a stat and reorders the others
    reader, counting = _reader([{"tx_timeout": 1, "pps_allowance_exceeded": 7},
                                {"pps_allowance_exceeded": 9, "new_stat": 0, "tx_timeout": 2},
                                {"pps_allowance_exceeded": 10, "new_stat": 1, "tx_timeout": 2}])
    assert reader.read_stats("eth0") == {"tx_timeout": 1, "pps_allowance_exceeded": 7}
    assert reader.read_stats("eth0") == {"pps_allowance_exceeded": 9, "new_stat": 0,
                                         "tx_timeout": 2}
    assert reader.read_stats("eth0")["pps_allowance_exceeded"] == 10
    assert counting.calls.count("GSTRINGS") == 2
    assert counting.calls.count("GSSET_INFO") == 3


def test_real_veth_recording_with_a_channel_change() -> None:
    # recorded from this kernel: `ethtool -L rx 2` between frames 0 and 1 (10 -> 17 stats)
    counting = Counting(ReplayTransport(load_recording(DATA / "veth-recording.json")))
    reader = EthtoolReader(counting)
    reads = [reader.read_stats("onrrec0") for _ in range(3)]
    assert [len(r) for r in reads] == [10, 17, 17]
    assert [r["rx_queue_0_xdp_packets"] for r in reads] == [5, 12, 15]
    assert reads[1]["rx_queue_1_xdp_packets"] == 0 and reads[2]["peer_ifindex"] > 0
    assert counting.calls.count("GSTRINGS") == 2
    assert reader.driver("onrrec0").driver == "veth"


def test_a_count_that_changes_between_ioctls_starts_the_read_over_once() -> None:
    two, three = (["a", "b"], [1, 2]), (["a", "b", "c"], [10, 20, 30])
    transport = Scripted({
        structs.ETHTOOL_GSSET_INFO: [structs.encode_sset_info_response(2),
                                     structs.encode_sset_info_response(3)],
        structs.ETHTOOL_GSTRINGS: [structs.encode_gstrings_response(two[0]),
                                   structs.encode_gstrings_response(three[0])],
        # 6.18's answer for a stale count: n_stats 0, no data
        structs.ETHTOOL_GSTATS: [structs.encode_gstats_response([]),
                                 structs.encode_gstats_response(three[1])]})
    assert EthtoolReader(transport).read_stats("eth0") == {"a": 10, "b": 20, "c": 30}
    assert transport.calls == ["GSSET_INFO", "GSTRINGS", "GSTATS"] * 2


def test_a_count_that_keeps_changing_is_an_error_not_wrong_values() -> None:
    older_kernel = structs.encode_gstats_response([1, 2, 3])  # writes its own, larger count
    transport = Scripted({
        structs.ETHTOOL_GSSET_INFO: [structs.encode_sset_info_response(2)] * 2,
        structs.ETHTOOL_GSTRINGS: [structs.encode_gstrings_response(["a", "b"])] * 2,
        structs.ETHTOOL_GSTATS: [older_kernel] * 2})
    reader = EthtoolReader(transport)
    with pytest.raises(structs.CountMismatch, match="GSTATS: kernel returned 3 values, asked for"):
        reader.read_stats("eth0")
    assert transport.calls.count("GSTATS") == 2


def test_duplicate_names_keep_the_first_value() -> None:
    iface = InterfaceRecording(structs.encode_drvinfo_response(ENA),
                               (frame_from_pairs([("x", 1), ("y", 2), ("x", 3)]),))
    transport = ReplayTransport(Recording("test", {"eth0": iface}))
    assert EthtoolReader(transport).read_stats("eth0") == {"x": 1, "y": 2}


def test_interface_gone_propagates_and_forget_drops_the_cache() -> None:
    reader, counting = _reader([{"a": 1}])
    reader.read_stats("eth0")
    with pytest.raises(InterfaceGone, match="ethtool GSSET_INFO on eth9: No such device") as gone:
        reader.read_stats("eth9")
    assert (gone.value.errno, gone.value.ifname, gone.value.command) == (
        errno.ENODEV, "eth9", "GSSET_INFO")
    reader.forget("eth9")  # never read: nothing to drop, no error
    reader.forget("eth0")
    reader.read_stats("eth0")
    assert counting.calls.count("GSTRINGS") == 2


def test_driver_without_stats_costs_one_ioctl() -> None:
    reader, counting = _reader([{}])
    assert reader.read_stats("eth0") == {}
    assert counting.calls == ["GSSET_INFO"]
    assert reader.driver("eth0") == ENA


# --- the replay transport ---------------------------------------------------------------------

def _frames_seen(transport: ReplayTransport, reads: int) -> list[int]:
    reader = EthtoolReader(transport)
    return [reader.read_stats("eth0")["n"] for _ in range(reads)]


def test_replay_repeats_the_last_frame_or_loops() -> None:
    frames = [{"n": 0}, {"n": 1}, {"n": 2}]
    assert _frames_seen(ReplayTransport.from_stats({"eth0": (ENA, frames)}), 5) == [0, 1, 2, 2, 2]
    looping = ReplayTransport.from_stats({"eth0": (ENA, frames)}, loop=True)
    assert _frames_seen(looping, 5) == [0, 1, 2, 0, 1]


def test_replay_advances_only_on_gstats_and_per_interface() -> None:
    transport = ReplayTransport.from_stats({"eth0": (ENA, [{"n": 0}, {"n": 1}]),
                                            "eth1": (ENA, [{"n": 5}, {"n": 6}])})
    assert transport.interfaces() == ["eth0", "eth1"]
    reader = EthtoolReader(transport)
    for _ in range(3):
        reader.driver("eth0")
        structs.parse_sset_info(transport.call("eth0", structs.ETHTOOL_GSSET_INFO,
                                               structs.pack_sset_info_request()))
    assert reader.read_stats("eth0") == {"n": 0}
    assert reader.read_stats("eth1") == {"n": 5}
    assert reader.read_stats("eth0") == {"n": 1}


def test_replay_refuses_what_a_kernel_would_refuse() -> None:
    transport = ReplayTransport.from_stats({"eth0": (ENA, [{"n": 0}])})
    with pytest.raises(NotSupported, match="ethtool 0x4 on eth0"):
        transport.call("eth0", 0x04, bytearray(b"\4\0\0\0"))
    with pytest.raises(ValueError, match="request carries command 0x3, not 0x1d"):
        transport.call("eth0", structs.ETHTOOL_GSTATS, structs.pack_drvinfo_request())
    with pytest.raises(ValueError, match="needs at least one frame"):
        ReplayTransport.from_stats({"eth0": (ENA, [])})


def test_recorder_keeps_the_raw_answers_it_was_given() -> None:
    source = load_recording(DATA / "veth-recording.json")
    copied = record(ReplayTransport(source), ["onrrec0"], 3, 1.0, "copy",
                    clock=iter([0.0, 0.5, 1.5, 2.5]).__next__, sleep=lambda _: None)
    original = source.interfaces["onrrec0"]
    again = copied.interfaces["onrrec0"]
    assert again.drvinfo == original.drvinfo
    assert [(f.sset_info, f.gstrings, f.gstats) for f in again.frames] == [
        (f.sset_info, f.gstrings, f.gstats) for f in original.frames]
    assert [f.at for f in again.frames] == [0.5, 1.5, 2.5]


def test_recorder_redoes_a_frame_whose_count_changed_midway() -> None:
    transport = Scripted({
        structs.ETHTOOL_GDRVINFO: [structs.encode_drvinfo_response(ENA)],
        structs.ETHTOOL_GSSET_INFO: [structs.encode_sset_info_response(1),
                                     structs.encode_sset_info_response(2)],
        structs.ETHTOOL_GSTRINGS: [structs.encode_gstrings_response(["a"]),
                                   structs.encode_gstrings_response(["a", "b"])],
        structs.ETHTOOL_GSTATS: [structs.encode_gstats_response([]),  # 6.18: stale count
                                 structs.encode_gstats_response([7, 8])]})
    taken = record(transport, ["eth0"], 1, 0.0, "test", sleep=lambda _: None)
    assert [decode_frame(f) for f in taken.interfaces["eth0"].frames] == [[("a", 7), ("b", 8)]]
    assert transport.calls == ["GDRVINFO"] + ["GSSET_INFO", "GSTRINGS", "GSTATS"] * 2
