"""SIOCETHTOOL structures: real bytes recorded from this kernel, round trips, malformed input."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_netreceiver.ethtool import structs
from otel_netreceiver.ethtool.recording import decode_frames, load_recording

DATA = Path(__file__).parent.parent / "data" / "ethtool"


def _ethtool_s(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines()[1:]:
        name, _, value = line.strip().rpartition(": ")
        out[name] = int(value)
    return out


def test_real_veth_bytes_decode_to_what_ethtool_printed() -> None:
    recording = load_recording(DATA / "veth-recording.json")
    iface = recording.interfaces["onrrec0"]
    info = structs.parse_drvinfo(iface.drvinfo)
    assert info.driver == "veth" and info.version == "1.0"
    # the kernel leaves bytes of an earlier string after the NUL: they must not leak
    assert b"\0" in iface.drvinfo[37:69] and info.version == "1.0"
    frames = decode_frames(iface)
    assert frames[0] == _ethtool_s(DATA / "veth-recording.ethtool-S.txt")
    assert "peer_ifindex" in frames[0]


def test_round_trips() -> None:
    info = structs.DriverInfo("ena", "2.13.0g", "", "0000:00:05.0", 3)
    assert structs.parse_drvinfo(structs.encode_drvinfo_response(info)) == info
    assert structs.parse_sset_info(structs.encode_sset_info_response(57)) == 57
    names = ["a" * 32, "bw_in_allowance_exceeded", ""]  # exactly 32 bytes: no NUL
    assert structs.parse_gstrings(structs.encode_gstrings_response(names), 3) == tuple(names)
    values = [0, 2**64 - 1, 450878]
    assert structs.parse_gstats(structs.encode_gstats_response(values), 3) == tuple(values)


def test_requests_carry_command_and_count() -> None:
    assert structs.command_of(structs.pack_drvinfo_request()) == structs.ETHTOOL_GDRVINFO
    req = structs.pack_gstrings_request(5)
    assert struct.unpack_from("=III", req) == (structs.ETHTOOL_GSTRINGS, structs.ETH_SS_STATS, 5)
    assert len(req) == 12 + 5 * 32
    assert len(structs.pack_gstats_request(7)) == 8 + 7 * 8
    sset = structs.pack_sset_info_request()
    assert struct.unpack_from("=IIQ", sset) == (structs.ETHTOOL_GSSET_INFO, 0, 1 << 1)


def test_no_stats_set_means_zero() -> None:
    buf = struct.pack("=IIQI", structs.ETHTOOL_GSSET_INFO, 0, 0, 99)  # mask bit cleared
    assert structs.parse_sset_info(buf) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: structs.parse_gstats(structs.encode_gstats_response([1, 2]), 3),
         "GSTATS: kernel returned 2 values, asked 3"),
        (lambda: structs.parse_gstrings(b"\x1b\0\0\0\1\0\0\0\2\0\0\0", 2), "GSTRINGS: response of"),
        (lambda: structs.parse_drvinfo(b"\3\0\0\0"), "GDRVINFO: response of 4 bytes"),
        (lambda: structs.parse_sset_info(structs.encode_gstats_response([1, 2])),
         "GSSET_INFO: response carries command 0x1d"),
        (lambda: structs.pack_gstats_request(-1), "count -1 outside"),
        (lambda: structs.pack_gstrings_request(10**6), "outside 0..65536"),
    ],
)
def test_malformed_input_names_the_command(call, message: str) -> None:
    with pytest.raises(structs.EthtoolParseError, match=message):
        call()


PARSERS = [lambda b, n: structs.parse_drvinfo(b), lambda b, n: structs.parse_sset_info(b),
           structs.parse_gstrings, structs.parse_gstats]


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=200, deadline=None)
@given(buf=st.binary(max_size=400), count=st.integers(min_value=-5, max_value=70000))
def test_arbitrary_bytes_raise_only_the_parse_error(parse, buf: bytes, count: int) -> None:
    with contextlib.suppress(structs.EthtoolParseError):
        parse(buf, count)
