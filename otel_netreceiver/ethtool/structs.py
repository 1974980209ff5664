"""Pack SIOCETHTOOL requests and parse the kernel's answers: pure functions, no I/O.

Kept free of I/O so that live reads, replayed recordings and the fuzz tests all
go through exactly the same bytes -> values code. Layouts are the kernel's
stable ABI in include/uapi/linux/ethtool.h:

    struct ethtool_drvinfo   { __u32 cmd; char driver[32], version[32], fw_version[32],
                               bus_info[32], erom_version[32], reserved2[12];
                               __u32 n_priv_flags, n_stats, testinfo_len, eedump_len,
                               regdump_len; };                            /* 196 bytes */
    struct ethtool_sset_info { __u32 cmd, reserved; __u64 sset_mask; __u32 data[]; };
    struct ethtool_gstrings  { __u32 cmd, string_set, len; __u8 data[]; };  /* len * 32 */
    struct ethtool_stats     { __u32 cmd, n_stats; __u64 data[]; };

The ioctl copies these structs as they are, so integers are in the host's byte
order ("=" below: native order, no padding; every field is naturally aligned
anyway). Any malformed input raises EthtoolParseError naming the command;
nothing else escapes (tests/unit/test_ethtool_structs.py fuzzes this).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

SIOCETHTOOL = 0x8946  # include/uapi/linux/sockios.h
ETHTOOL_GDRVINFO = 0x03  # include/uapi/linux/ethtool.h
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSTATS = 0x1D
ETHTOOL_GSSET_INFO = 0x37
ETH_SS_STATS = 1  # enum ethtool_stringset
ETH_GSTRING_LEN = 32
# Far above any real driver (ENA: a few hundred, mlx5 with many channels: a few
# thousand). Bounds what a corrupt count can make us allocate or parse.
MAX_STATS = 65536

COMMAND_NAMES = MappingProxyType({
    ETHTOOL_GDRVINFO: "GDRVINFO", ETHTOOL_GSTRINGS: "GSTRINGS",
    ETHTOOL_GSTATS: "GSTATS", ETHTOOL_GSSET_INFO: "GSSET_INFO"})

_DRVINFO = struct.Struct("=I32s32s32s32s32s12sIIIII")
_SSET_HEAD = struct.Struct("=IIQ")  # sizeof(struct ethtool_sset_info) == 16
_SSET_REQUEST = struct.Struct("=IIQI")  # the header plus the one data[] slot we ask for
_GSTRINGS_HEAD = struct.Struct("=III")
_GSTATS_HEAD = struct.Struct("=II")
_U32 = struct.Struct("=I")
_U64_MAX = 2**64 - 1
DRVINFO_SIZE = _DRVINFO.size
GSTRINGS_HEADER_SIZE = _GSTRINGS_HEAD.size
GSTATS_HEADER_SIZE = _GSTATS_HEAD.size


def command_name(command: int) -> str:
    """"GSTATS" for 0x1d; hex for commands this module does not know."""
    return COMMAND_NAMES.get(command, hex(command))


class EthtoolParseError(ValueError):
    """A request or response that does not have the layout its command promises."""

    def __init__(self, command: int, problem: str) -> None:
        self.command = command
        self.problem = problem
        super().__init__(f"ethtool {command_name(command)}: {problem}")


class CountMismatch(EthtoolParseError):
    """The kernel answered for another number of entries than we asked for.

    Not corruption: the driver's stat set changed between our GSSET_INFO and
    this call (channels reconfigured, device reset). Kernels whose
    net/ethtool/ioctl.c ethtool_get_stats()/ethtool_get_strings() set the
    count to the driver's current one return that count and write that many
    entries; the 6.18.44 kernel measured here answers 0 and writes nothing.
    Either way the caller should start over from GSSET_INFO.
    """

    def __init__(self, command: int, asked: int, returned: int) -> None:
        self.asked = asked
        self.returned = returned
        what = "names" if command == ETHTOOL_GSTRINGS else "values"
        super().__init__(command, f"kernel returned {returned} {what}, asked for {asked}")


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """What `ethtool -i` shows; ``driver`` is how the ENA collector finds ENA NICs."""

    driver: str
    version: str
    fw_version: str
    bus_info: str
    n_stats: int


def _check_count(command: int, count: int) -> None:
    if not 0 <= count <= MAX_STATS:
        raise EthtoolParseError(command, f"count {count} outside 0..{MAX_STATS}")


def _check_size(command: int, buf: bytes | bytearray, need: int) -> None:
    if len(buf) < need:
        raise EthtoolParseError(command, f"response of {len(buf)} bytes, need {need}")


def _check_command(command: int, found: int) -> None:
    if found != command:
        raise EthtoolParseError(command, f"response carries command {found:#x}")


def _cstr(raw: bytes) -> str:
    """A fixed-size char field: up to the first NUL, or all of it if there is none.

    Bytes after the NUL are ignored, not just trailing NULs stripped: the kernel
    leaves older text there (GDRVINFO pre-fills version with UTS_RELEASE, then
    the driver's strscpy() writes a shorter string over its start; see
    tests/data/ethtool/veth-recording.json). `ethtool` prints "%.*s" likewise.
    """
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _field(command: int, what: str, text: str, limit: int) -> bytes:
    raw = text.encode()
    if len(raw) > limit or b"\0" in raw:
        raise ValueError(f"cannot encode {command_name(command)}: {what} {text!r} is not "
                         f"0..{limit} bytes without NUL")
    return raw


def pack_drvinfo_request() -> bytearray:
    """A zeroed struct ethtool_drvinfo with cmd set; the kernel overwrites all of it."""
    buf = bytearray(DRVINFO_SIZE)
    _U32.pack_into(buf, 0, ETHTOOL_GDRVINFO)
    return buf


def parse_drvinfo(buf: bytes | bytearray) -> DriverInfo:
    _check_size(ETHTOOL_GDRVINFO, buf, DRVINFO_SIZE)
    cmd, driver, version, fw, bus, _erom, _res, _npriv, n_stats, *_ = _DRVINFO.unpack_from(buf)
    _check_command(ETHTOOL_GDRVINFO, cmd)
    return DriverInfo(_cstr(driver), _cstr(version), _cstr(fw), _cstr(bus), n_stats)


def encode_drvinfo_response(info: DriverInfo) -> bytes:
    """What the kernel would return; text fields hold at most 31 bytes (strscpy)."""
    cmd = ETHTOOL_GDRVINFO
    fields = [_field(cmd, name, getattr(info, name), 31)
              for name in ("driver", "version", "fw_version", "bus_info")]
    if not 0 <= info.n_stats <= 0xFFFFFFFF:
        raise ValueError(f"cannot encode GDRVINFO: n_stats {info.n_stats} is not a u32")
    return _DRVINFO.pack(cmd, *fields, b"", b"", 0, info.n_stats, 0, 0, 0)


def pack_sset_info_request() -> bytearray:
    """Ask for the ETH_SS_STATS count only: one bit in sset_mask, one data[] slot."""
    return bytearray(_SSET_REQUEST.pack(ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_STATS, 0))


def parse_sset_info(buf: bytes | bytearray) -> int:
    """Number of driver statistics; 0 when the driver has none (the bit comes back cleared).

    net/ethtool/ioctl.c ethtool_get_sset_info() clears sset_mask, sets back
    the bit of each requested set the driver supports and stores one u32 count
    per set bit in ascending bit order, so our count sits after those of any
    lower bits.
    """
    cmd = ETHTOOL_GSSET_INFO
    _check_size(cmd, buf, _SSET_HEAD.size)
    found, _reserved, mask = _SSET_HEAD.unpack_from(buf)
    _check_command(cmd, found)
    bit = 1 << ETH_SS_STATS
    if not mask & bit:
        return 0
    offset = _SSET_HEAD.size + _U32.size * (mask & (bit - 1)).bit_count()
    _check_size(cmd, buf, offset + _U32.size)
    (count,) = _U32.unpack_from(buf, offset)
    _check_count(cmd, count)
    return count


def encode_sset_info_response(count: int) -> bytes:
    """A count of 0 is encoded as "no stats" (bit cleared), which parses to 0 too."""
    if not 0 <= count <= 0xFFFFFFFF:
        raise ValueError(f"cannot encode GSSET_INFO: count {count} is not a u32")
    mask = (1 << ETH_SS_STATS) if count else 0
    return _SSET_REQUEST.pack(ETHTOOL_GSSET_INFO, 0, mask, count)


def pack_gstrings_request(count: int) -> bytearray:
    _check_count(ETHTOOL_GSTRINGS, count)
    buf = bytearray(_GSTRINGS_HEAD.size + count * ETH_GSTRING_LEN)
    _GSTRINGS_HEAD.pack_into(buf, 0, ETHTOOL_GSTRINGS, ETH_SS_STATS, count)
    return buf


def parse_gstrings(buf: bytes | bytearray, count: int) -> tuple[str, ...]:
    """The stat names, in the driver's order; each is a 32-byte field, NUL-less if 32 long."""
    cmd = ETHTOOL_GSTRINGS
    _check_count(cmd, count)
    _check_size(cmd, buf, _GSTRINGS_HEAD.size)
    found, string_set, length = _GSTRINGS_HEAD.unpack_from(buf)
    _check_command(cmd, found)
    if string_set != ETH_SS_STATS:
        raise EthtoolParseError(cmd, f"string set {string_set}, asked for {ETH_SS_STATS}")
    if length != count:
        raise CountMismatch(cmd, count, length)
    base = _GSTRINGS_HEAD.size
    _check_size(cmd, buf, base + count * ETH_GSTRING_LEN)
    raw = bytes(buf[base:base + count * ETH_GSTRING_LEN])
    return tuple(_cstr(raw[i:i + ETH_GSTRING_LEN])
                 for i in range(0, count * ETH_GSTRING_LEN, ETH_GSTRING_LEN))


def encode_gstrings_response(names: Sequence[str]) -> bytes:
    """Names of up to 32 bytes; exactly 32 are stored without NUL, as drivers may."""
    body = b"".join(_field(ETHTOOL_GSTRINGS, "name", name, ETH_GSTRING_LEN)
                    .ljust(ETH_GSTRING_LEN, b"\0") for name in names)
    return _GSTRINGS_HEAD.pack(ETHTOOL_GSTRINGS, ETH_SS_STATS, len(names)) + body


def pack_gstats_request(count: int) -> bytearray:
    _check_count(ETHTOOL_GSTATS, count)
    buf = bytearray(_GSTATS_HEAD.size + count * 8)
    _GSTATS_HEAD.pack_into(buf, 0, ETHTOOL_GSTATS, count)
    return buf


def parse_gstats(buf: bytes | bytearray, count: int) -> tuple[int, ...]:
    """The u64 values, in the same order as the names of the same count."""
    cmd = ETHTOOL_GSTATS
    _check_count(cmd, count)
    _check_size(cmd, buf, _GSTATS_HEAD.size)
    found, n_stats = _GSTATS_HEAD.unpack_from(buf)
    _check_command(cmd, found)
    if n_stats != count:
        raise CountMismatch(cmd, count, n_stats)
    _check_size(cmd, buf, _GSTATS_HEAD.size + count * 8)
    return _values_struct(count).unpack_from(buf, _GSTATS_HEAD.size)


@functools.lru_cache(maxsize=64)
def _values_struct(count: int) -> struct.Struct:
    """One compiled format per stat count (a read would otherwise re-parse the format)."""
    return struct.Struct(f"={count}Q")


def encode_gstats_response(values: Sequence[int]) -> bytes:
    for value in values:
        if not 0 <= value <= _U64_MAX:
            raise ValueError(f"cannot encode GSTATS: value {value} is not a u64")
    return (_GSTATS_HEAD.pack(ETHTOOL_GSTATS, len(values))
            + struct.pack(f"={len(values)}Q", *values))


def command_of(buf: bytes | bytearray) -> int:
    """The command a request buffer carries (its first u32), so a replay can check it."""
    if len(buf) < _U32.size:
        raise EthtoolParseError(0, f"request of {len(buf)} bytes has no command")
    return int(_U32.unpack_from(buf)[0])
