"""SIOCETHTOOL structures: real bytes recorded from this kernel, round trips, malformed input.

Also the recording format (it is what carries those bytes) and the ENA sample
generated from the AWS documentation's text.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_netreceiver.ethtool import recording, structs
from otel_netreceiver.ethtool.recording import (
    RecordingError,
    decode_frame,
    decode_frames,
    load_recording,
    parse_ethtool_s,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "ethtool"
ENA_JSON = ROOT / "otel_netreceiver" / "ethtool" / "recordings" / "aws-ena-sample.json"


# --- real bytes -------------------------------------------------------------------------------

def test_real_veth_bytes_decode_to_what_ethtool_printed() -> None:
    iface = load_recording(DATA / "veth-recording.json").interfaces["onrrec0"]
    info = structs.parse_drvinfo(iface.drvinfo)
    assert (info.driver, info.version, info.fw_version, info.bus_info) == ("veth", "1.0", "", "")
    assert info.n_stats == 10  # counted when GDRVINFO ran, before `ethtool -L rx 2`
    # the kernel left the end of UTS_RELEASE after version's NUL: it must not leak
    assert iface.drvinfo[36:40] == b"1.0\0" and iface.drvinfo[40:41] != b"\0"
    frames = [decode_frame(f) for f in iface.frames]
    assert frames[-1] == parse_ethtool_s((DATA / "veth-recording.ethtool-S.txt").read_text())
    assert [len(f) for f in frames] == [10, 17, 17]  # rx queues 1 -> 2 between frames 0 and 1
    packets = [dict(f)["rx_queue_0_xdp_packets"] for f in frames]
    assert packets == [5, 12, 15]
    assert all(dict(f)["rx_queue_0_xdp_bytes"] == 60 * dict(f)["rx_queue_0_xdp_packets"]
               for f in frames)
    assert frames[0][0][0] == "peer_ifindex" and frames[1][8][0] == "rx_queue_1_xdp_packets"


def test_ena_sample_decodes_to_the_documented_text_in_order() -> None:
    sample = load_recording(ENA_JSON)
    assert "troubleshooting-ena" in sample.source and "encoders" in sample.source
    iface = sample.interfaces["eth0"]
    assert structs.parse_drvinfo(iface.drvinfo).driver == "ena"
    text = (DATA / "aws-ena-sample.ethtool-S.txt").read_text()
    assert recording.format_ethtool_s(decode_frame(iface.frames[0])) == text
    stats = decode_frames(iface)[0]
    assert len(stats) == 16 and stats["conntrack_allowance_available"] == 450878
    assert (stats["queue_0_tx_cnt"], stats["queue_0_tx_bytes"]) == (4329, 1075749)


def test_ena_json_is_what_the_generator_script_writes() -> None:
    script = ROOT / "scripts" / "make-ena-recording.py"
    spec = importlib.util.spec_from_file_location("make_ena_recording", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == ENA_JSON.read_text()


# --- layouts and round trips ------------------------------------------------------------------

def test_requests_have_the_kernels_layout() -> None:
    assert len(structs.pack_drvinfo_request()) == 196
    assert struct.unpack("=IIQI", structs.pack_sset_info_request()) == (0x37, 0, 1 << 1, 0)
    req = structs.pack_gstrings_request(5)
    assert struct.unpack_from("=III", req) == (0x1B, structs.ETH_SS_STATS, 5)
    assert len(req) == 12 + 5 * 32 and not any(req[12:])
    req = structs.pack_gstats_request(7)
    assert struct.unpack_from("=II", req) == (0x1D, 7) and len(req) == 8 + 7 * 8
    assert structs.command_of(structs.pack_drvinfo_request()) == structs.ETHTOOL_GDRVINFO


def test_round_trips() -> None:
    info = structs.DriverInfo("ena", "2.13.0g", "", "0000:00:05.0", 3)
    assert structs.parse_drvinfo(structs.encode_drvinfo_response(info)) == info
    assert structs.parse_sset_info(structs.encode_sset_info_response(57)) == 57
    names = ["a" * 32, "bw_in_allowance_exceeded", "", "d\u00e9bit"]  # 32 bytes: no NUL
    assert structs.parse_gstrings(structs.encode_gstrings_response(names), 4) == tuple(names)
    values = [0, 2**64 - 1, 450878]
    assert structs.parse_gstats(structs.encode_gstats_response(values), 3) == tuple(values)


def test_sset_info_without_the_stats_bit_means_no_stats() -> None:
    # what `lo` answers here: mask cleared, data[] left as we sent it
    assert structs.parse_sset_info(struct.pack("=IIQI", 0x37, 0, 0, 0xDEADBEEF)) == 0
    assert structs.encode_sset_info_response(0) == struct.pack("=IIQI", 0x37, 0, 0, 0)


def test_sset_info_count_follows_counts_of_lower_bits() -> None:
    # ETH_SS_TEST (bit 0) also set: data[0] is its count, ours is data[1]
    buf = struct.pack("=IIQII", 0x37, 0, 0b11, 4, 42)
    assert structs.parse_sset_info(buf) == 42
    with pytest.raises(structs.EthtoolParseError, match="GSSET_INFO: response of 20 bytes"):
        structs.parse_sset_info(buf[:20])


def test_names_stop_at_the_first_nul_and_bad_utf8_is_replaced() -> None:
    names = b"rx\0stale".ljust(32, b"\0") + b"\xff\xfeq".ljust(32, b"\0")
    raw = struct.pack("=III", 0x1B, 1, 2) + names
    assert structs.parse_gstrings(raw, 2) == ("rx", "\ufffd\ufffdq")


def test_values_are_native_endian_u64() -> None:
    raw = struct.pack("=II", 0x1D, 1) + (1).to_bytes(8, sys.byteorder)
    assert structs.parse_gstats(raw, 1) == (1,)


# --- malformed input --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: structs.parse_drvinfo(b"\3\0\0\0"), "GDRVINFO: response of 4 bytes, need 196"),
        (lambda: structs.parse_drvinfo(bytes(196)), "GDRVINFO: response carries command 0x0"),
        (lambda: structs.parse_sset_info(structs.encode_gstats_response([1, 2])),
         "GSSET_INFO: response carries command 0x1d"),
        (lambda: structs.parse_sset_info(struct.pack("=IIQI", 0x37, 0, 2, 70000)),
         "GSSET_INFO: count 70000 outside 0..65536"),
        (lambda: structs.parse_gstrings(b"\x1b\0\0\0\1\0\0\0\2\0\0\0", 2),
         "GSTRINGS: response of 12 bytes, need 76"),
        (lambda: structs.parse_gstrings(struct.pack("=III", 0x1B, 2, 0), 0),
         "GSTRINGS: string set 2, asked for 1"),
        (lambda: structs.parse_gstats(structs.encode_gstats_response([1, 2]), 3),
         "GSTATS: kernel returned 2 values, asked for 3"),
        (lambda: structs.parse_gstats(b"\x1d\0\0\0", 0), "GSTATS: response of 4 bytes, need 8"),
        (lambda: structs.parse_gstats(b"", -1), "GSTATS: count -1 outside"),
        (lambda: structs.pack_gstats_request(-1), "GSTATS: count -1 outside"),
        (lambda: structs.pack_gstrings_request(65537), "GSTRINGS: count 65537 outside 0..65536"),
        (lambda: structs.command_of(b"\0"), "request of 1 bytes has no command"),
    ],
)
def test_malformed_input_names_the_command_and_the_problem(call, message: str) -> None:
    with pytest.raises(structs.EthtoolParseError, match=message):
        call()


def test_count_mismatch_says_what_was_asked_and_returned() -> None:
    # 6.18 answers a GSTATS for a count that is not the driver's with n_stats = 0
    with pytest.raises(structs.CountMismatch) as caught:
        structs.parse_gstats(struct.pack("=II", 0x1D, 0) + bytes(80), 10)
    assert (caught.value.asked, caught.value.returned) == (10, 0)
    assert caught.value.command == structs.ETHTOOL_GSTATS


@pytest.mark.parametrize(
    "call",
    [
        lambda: structs.encode_gstrings_response(["x" * 33]),
        lambda: structs.encode_gstrings_response(["a\0b"]),
        lambda: structs.encode_gstats_response([-1]),
        lambda: structs.encode_gstats_response([2**64]),
        lambda: structs.encode_drvinfo_response(structs.DriverInfo("d" * 32, "", "", "", 0)),
        lambda: structs.encode_sset_info_response(-3),
    ],
)
def test_encoders_refuse_what_the_kernel_could_not_send(call) -> None:
    with pytest.raises(ValueError, match="cannot encode"):
        call()


Parse = Callable[[bytes, int], object]
PARSERS: list[Parse] = [
    lambda b, n: structs.parse_drvinfo(b), lambda b, n: structs.parse_sset_info(b),
    structs.parse_gstrings, structs.parse_gstats,
    lambda b, n: structs.pack_gstrings_request(n), lambda b, n: structs.pack_gstats_request(n),
    lambda b, n: structs.command_of(b),
]


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=300, deadline=None)
@given(buf=st.binary(max_size=600), count=st.integers(min_value=-(2**40), max_value=2**40))
def test_arbitrary_bytes_raise_only_the_parse_error(parse: Parse, buf: bytes, count: int) -> None:
    with contextlib.suppress(structs.EthtoolParseError):
        parse(buf, count)


VALID = [structs.encode_drvinfo_response(structs.DriverInfo("ena", "2.1", "", "", 3)),
         structs.encode_sset_info_response(3), structs.encode_gstrings_response(["a", "b", "c"]),
         structs.encode_gstats_response([1, 2, 3])]


@settings(max_examples=400, deadline=None)
@given(which=st.integers(0, 3), data=st.data(), count=st.integers(-2, 5))
def test_damaged_real_answers_raise_only_the_parse_error(which: int, data: st.DataObject,
                                                         count: int) -> None:
    buf = bytearray(VALID[which])
    for _ in range(data.draw(st.integers(0, 4))):  # overwrite a few bytes, then maybe cut
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    buf = buf[:data.draw(st.integers(0, len(buf)))]
    with contextlib.suppress(structs.EthtoolParseError):
        PARSERS[which](bytes(buf), count)


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(
    st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=32)
    .filter(lambda s: len(s.encode()) <= 32),
    st.integers(0, 2**64 - 1)), max_size=40))
def test_encode_then_parse_is_identity(pairs: list[tuple[str, int]]) -> None:
    frame = recording.frame_from_pairs(pairs)
    assert decode_frame(frame) == pairs


# --- the recording format ---------------------------------------------------------------------

def _doc(**frame_changes: object) -> dict:
    good = recording.frame_from_pairs([("rx", 1)])
    frame = {k: base64.b64encode(getattr(good, k)).decode() for k in ("sset_info", "gstrings",
                                                                        "gstats")}
    drv = structs.encode_drvinfo_response(structs.DriverInfo("veth", "1.0", "", "", 1))
    return {"format": recording.FORMAT, "source": "test", "interfaces": {
        "eth0.100": {"drvinfo": base64.b64encode(drv).decode(),
                     "frames": [frame | frame_changes]}}}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gstats": "not base64!"}, "gstats: not base64"),
        ({"gstrings": 7}, "gstrings: expected base64 text, found int"),
        ({"at": "soon"}, "at: expected seconds as a number, found 'soon'"),
        ({"gstats": base64.b64encode(structs.encode_gstats_response([1, 2])).decode()},
         "gstats: ethtool GSTATS: kernel returned 2 values, asked for 1"),
    ],
)
def test_bad_fields_are_named_by_file_and_json_path(tmp_path: Path, changes: dict,
                                                     message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_doc(**changes)))
    where = '$.interfaces["eth0.100"].frames[0].'  # not a dotted name: VLAN interfaces have dots
    with pytest.raises(RecordingError, match=re.escape(f"{path}: {where}{message}")):
        load_recording(path)


def test_bad_documents_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    for text, message in [("{", "cannot read the recording"),
                          ('{"format": "other"}', r"\$\.format: expected"),
                          (json.dumps({"format": recording.FORMAT, "interfaces": {}}),
                           r"\$\.interfaces: expected a non-empty object")]:
        path.write_text(text)
        with pytest.raises(RecordingError, match=message):
            load_recording(path)
    doc = _doc()
    doc["interfaces"]["eth0.100"]["frames"] = []
    path.write_text(json.dumps(doc))
    with pytest.raises(RecordingError, match=r"\.frames: expected a non-empty list"):
        load_recording(path)


def test_save_then_load_keeps_every_byte(tmp_path: Path) -> None:
    original = load_recording(DATA / "veth-recording.json")
    recording.save_recording(original, tmp_path / "copy.json")
    assert load_recording(tmp_path / "copy.json") == original
    assert (tmp_path / "copy.json").read_text() == (DATA / "veth-recording.json").read_text()


def test_show_prints_frames_like_ethtool_s(capsys: pytest.CaptureFixture[str]) -> None:
    assert recording.main(["show", str(DATA / "veth-recording.json")]) == 0
    out = capsys.readouterr().out
    assert "# onrrec0 (driver veth) frame 2 at " in out
    assert out.endswith((DATA / "veth-recording.ethtool-S.txt").read_text())
    assert recording.main(["show", str(DATA / "missing.json")]) == 1
    assert "missing.json: cannot read the recording" in capsys.readouterr().err
