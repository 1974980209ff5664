"""Pack SIOCETHTOOL requests and parse their responses: pure functions, no I/O.

Layouts are those of include/uapi/linux/ethtool.h (stable kernel ABI):

    struct ethtool_drvinfo   { u32 cmd; char driver[32], version[32], fw_version[32],
                               bus_info[32], erom_version[32], reserved2[12];
                               u32 n_priv_flags, n_stats, testinfo_len, eedump_len,
                               regdump_len; }                              /* 196 bytes */
    struct ethtool_sset_info { u32 cmd, reserved; u64 sset_mask; u32 data[]; }
    struct ethtool_gstrings  { u32 cmd, string_set, len; u8 data[len * 32]; }
    struct ethtool_stats     { u32 cmd, n_stats; u64 data[n_stats]; }

Integers are in the host's byte order (the ioctl copies structs as they are).
Every malformed input raises EthtoolParseError, which names the command.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

SIOCETHTOOL = 0x8946  # include/uapi/linux/sockios.h
ETHTOOL_GDRVINFO = 0x03
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSTATS = 0x1D
ETHTOOL_GSSET_INFO = 0x37
ETH_SS_STATS = 1
ETH_GSTRING_LEN = 32
MAX_STATS = 65536  # far above any driver (ENA has a few hundred); bounds allocations

COMMAND_NAMES = {ETHTOOL_GDRVINFO: "GDRVINFO", ETHTOOL_GSTRINGS: "GSTRINGS",
                 ETHTOOL_GSTATS: "GSTATS", ETHTOOL_GSSET_INFO: "GSSET_INFO"}

_DRVINFO = struct.Struct("=I32s32s32s32s32s12sIIIII")
_SSET_INFO = struct.Struct("=IIQI")  # with room for one data[] entry: we ask for one set
_GSTRINGS_HEAD = struct.Struct("=III")
_GSTATS_HEAD = struct.Struct("=II")
DRVINFO_SIZE = _DRVINFO.size


class EthtoolParseError(ValueError):
    """A response that does not have the layout its command promises."""

    def __init__(self, command: int, problem: str) -> None:
        self.command = command
        super().__init__(f"ethtool {COMMAND_NAMES.get(command, hex(command))}: {problem}")


@dataclass(frozen=True, slots=True)
class DriverInfo:
    driver: str
    version: str
    fw_version: str
    bus_info: str
    n_stats: int


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _check_count(command: int, count: int) -> None:
    if not 0 <= count <= MAX_STATS:
        raise EthtoolParseError(command, f"count {count} outside 0..{MAX_STATS}")


def _check_size(command: int, buf: bytes | bytearray, need: int) -> None:
    if len(buf) < need:
        raise EthtoolParseError(command, f"response of {len(buf)} bytes, need {need}")


def pack_drvinfo_request() -> bytearray:
    buf = bytearray(DRVINFO_SIZE)
    struct.pack_into("=I", buf, 0, ETHTOOL_GDRVINFO)
    return buf


def parse_drvinfo(buf: bytes | bytearray) -> DriverInfo:
    _check_size(ETHTOOL_GDRVINFO, buf, DRVINFO_SIZE)
    cmd, driver, version, fw, bus, _erom, _res, _npriv, n_stats, *_ = _DRVINFO.unpack_from(buf)
    if cmd != ETHTOOL_GDRVINFO:
        raise EthtoolParseError(ETHTOOL_GDRVINFO, f"response carries command {cmd:#x}")
    return DriverInfo(_cstr(driver), _cstr(version), _cstr(fw), _cstr(bus), n_stats)


def encode_drvinfo_response(info: DriverInfo) -> bytes:
    return _DRVINFO.pack(ETHTOOL_GDRVINFO, info.driver.encode(), info.version.encode(),
                         info.fw_version.encode(), info.bus_info.encode(), b"", b"", 0,
                         info.n_stats, 0, 0, 0)


def pack_sset_info_request() -> bytearray:
    return bytearray(_SSET_INFO.pack(ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_STATS, 0))


def parse_sset_info(buf: bytes | bytearray) -> int:
    """Number of ETH_SS_STATS strings; 0 when the driver has none (mask bit cleared)."""
    _check_size(ETHTOOL_GSSET_INFO, buf, _SSET_INFO.size)
    cmd, _reserved, mask, count = _SSET_INFO.unpack_from(buf)
    if cmd != ETHTOOL_GSSET_INFO:
        raise EthtoolParseError(ETHTOOL_GSSET_INFO, f"response carries command {cmd:#x}")
    if not mask & (1 << ETH_SS_STATS):
        return 0
    _check_count(ETHTOOL_GSSET_INFO, count)
    return count


def encode_sset_info_response(count: int) -> bytes:
    mask = (1 << ETH_SS_STATS) if count else 0
    return _SSET_INFO.pack(ETHTOOL_GSSET_INFO, 0, mask, count)


def pack_gstrings_request(count: int) -> bytearray:
    _check_count(ETHTOOL_GSTRINGS, count)
    buf = bytearray(_GSTRINGS_HEAD.size + count * ETH_GSTRING_LEN)
    _GSTRINGS_HEAD.pack_into(buf, 0, ETHTOOL_GSTRINGS, ETH_SS_STATS, count)
    return buf


def parse_gstrings(buf: bytes | bytearray, count: int) -> tuple[str, ...]:
    """Names are 32-byte fields, NUL-padded, possibly without a NUL when exactly 32 long."""
    _check_count(ETHTOOL_GSTRINGS, count)
    _check_size(ETHTOOL_GSTRINGS, buf, _GSTRINGS_HEAD.size)
    cmd, _set, length = _GSTRINGS_HEAD.unpack_from(buf)
    if cmd != ETHTOOL_GSTRINGS:
        raise EthtoolParseError(ETHTOOL_GSTRINGS, f"response carries command {cmd:#x}")
    if length != count:
        raise EthtoolParseError(ETHTOOL_GSTRINGS, f"kernel returned {length} names, asked {count}")
    _check_size(ETHTOOL_GSTRINGS, buf, _GSTRINGS_HEAD.size + count * ETH_GSTRING_LEN)
    base = _GSTRINGS_HEAD.size
    return tuple(_cstr(bytes(buf[base + i * ETH_GSTRING_LEN: base + (i + 1) * ETH_GSTRING_LEN]))
                 for i in range(count))


def encode_gstrings_response(names: Sequence[str]) -> bytes:
    body = b"".join(name.encode()[:ETH_GSTRING_LEN].ljust(ETH_GSTRING_LEN, b"\0")
                    for name in names)
    return _GSTRINGS_HEAD.pack(ETHTOOL_GSTRINGS, ETH_SS_STATS, len(names)) + body


def pack_gstats_request(count: int) -> bytearray:
    _check_count(ETHTOOL_GSTATS, count)
    buf = bytearray(_GSTATS_HEAD.size + count * 8)
    _GSTATS_HEAD.pack_into(buf, 0, ETHTOOL_GSTATS, count)
    return buf


def parse_gstats(buf: bytes | bytearray, count: int) -> tuple[int, ...]:
    _check_count(ETHTOOL_GSTATS, count)
    _check_size(ETHTOOL_GSTATS, buf, _GSTATS_HEAD.size)
    cmd, n_stats = _GSTATS_HEAD.unpack_from(buf)
    if cmd != ETHTOOL_GSTATS:
        raise EthtoolParseError(ETHTOOL_GSTATS, f"response carries command {cmd:#x}")
    if n_stats != count:
        raise EthtoolParseError(ETHTOOL_GSTATS, f"kernel returned {n_stats} values, asked {count}")
    _check_size(ETHTOOL_GSTATS, buf, _GSTATS_HEAD.size + count * 8)
    return struct.unpack_from(f"={count}Q", buf, _GSTATS_HEAD.size)


def encode_gstats_response(values: Sequence[int]) -> bytes:
    return _GSTATS_HEAD.pack(ETHTOOL_GSTATS, len(values)) + struct.pack(f"={len(values)}Q", *values)


def command_of(buf: bytes | bytearray) -> int:
    """The command a request buffer carries (its first u32)."""
    if len(buf) < 4:
        raise EthtoolParseError(0, f"request of {len(buf)} bytes has no command")
    return int(struct.unpack_from("=I", buf)[0])
