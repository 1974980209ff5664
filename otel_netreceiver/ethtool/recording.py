"""Recordings of SIOCETHTOOL answers: the raw bytes a kernel returned, replayable.

Raw bytes rather than decoded numbers, so that a replay exercises the same
parsers as a live read (and a recording from a real ENA host is evidence of
what that driver really sends). Format (JSON)::

    {"format": "otel-netreceiver/ethtool-recording/1", "source": "where it came from",
     "interfaces": {"eth0": {"drvinfo": "<base64>", "frames": [
         {"sset_info": "<base64>", "gstrings": "<base64>", "gstats": "<base64>",
          "at": 0.0}]}}}

``at`` (seconds since the first frame) is optional. Command line::

    python -m otel_netreceiver.ethtool.recording record IFACE [IFACE...] --frames N \\
        --interval S -o FILE [--source TEXT]
    python -m otel_netreceiver.ethtool.recording show FILE
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otel_netreceiver.ethtool import structs

if TYPE_CHECKING:
    from otel_netreceiver.ethtool.transport import EthtoolTransport

FORMAT = "otel-netreceiver/ethtool-recording/1"
_FRAME_FIELDS = ("sset_info", "gstrings", "gstats")
_RECORD_ATTEMPTS = 3


class RecordingError(ValueError):
    """A recording that cannot be used; names the file and the JSON path of the bad field."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One read of one interface: the three answers of a full GSSET_INFO/GSTRINGS/GSTATS."""

    sset_info: bytes
    gstrings: bytes
    gstats: bytes
    at: float | None = None


@dataclass(frozen=True, slots=True)
class InterfaceRecording:
    drvinfo: bytes
    frames: tuple[Frame, ...]


@dataclass(frozen=True, slots=True)
class Recording:
    source: str
    interfaces: Mapping[str, InterfaceRecording]


def frame_from_pairs(pairs: Sequence[tuple[str, int]], at: float | None = None) -> Frame:
    """Encode ``[(name, value), ...]`` as a kernel would answer; duplicates are kept."""
    return Frame(structs.encode_sset_info_response(len(pairs)),
                 structs.encode_gstrings_response([name for name, _ in pairs]),
                 structs.encode_gstats_response([value for _, value in pairs]), at)


def recording_from_stats(
    interfaces: Mapping[str, tuple[structs.DriverInfo, Sequence[Mapping[str, int]]]],
    source: str,
) -> Recording:
    """``{ifname: (DriverInfo, [{stat: value}, ...])}`` -> the bytes a kernel would return."""
    result = {}
    for name, (info, frames) in interfaces.items():
        if not frames:
            raise ValueError(f"interface {name!r} needs at least one frame")
        result[name] = InterfaceRecording(structs.encode_drvinfo_response(info),
                                          tuple(frame_from_pairs(list(f.items())) for f in frames))
    return Recording(source, result)


def decode_frame(frame: Frame) -> list[tuple[str, int]]:
    """``[(name, value), ...]`` in the driver's order, through the reader's parsers."""
    count = structs.parse_sset_info(frame.sset_info)
    names = structs.parse_gstrings(frame.gstrings, count)
    return list(zip(names, structs.parse_gstats(frame.gstats, count), strict=True))


def decode_frames(iface: InterfaceRecording) -> list[dict[str, int]]:
    """Each frame as ``{stat: value}``; a repeated name keeps its first value, as the reader."""
    out = []
    for frame in iface.frames:
        stats: dict[str, int] = {}
        for name, value in decode_frame(frame):
            stats.setdefault(name, value)
        out.append(stats)
    return out


def parse_ethtool_s(text: str) -> list[tuple[str, int]]:
    """`ethtool -S` output ("NIC statistics:" then "     name: value") as ordered pairs."""
    pairs = []
    for line in text.splitlines():
        name, sep, value = line.removeprefix("     ").rpartition(": ")
        if sep and value.strip().isdigit():
            pairs.append((name, int(value)))
    return pairs


def format_ethtool_s(pairs: Iterable[tuple[str, int]]) -> str:
    """The inverse of parse_ethtool_s, byte for byte what `ethtool -S` prints."""
    return "NIC statistics:\n" + "".join(f"     {name}: {value}\n" for name, value in pairs)


def _where(name: str) -> str:
    simple = name.replace("-", "_").isidentifier()
    return f"$.interfaces.{name}" if simple else f"$.interfaces[{json.dumps(name)}]"


def _b64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise RecordingError(f"{where}: expected base64 text, found {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise RecordingError(f"{where}: not base64 ({exc})") from None


def _frame(data: object, where: str) -> Frame:
    if not isinstance(data, dict):
        raise RecordingError(f"{where}: expected an object")
    at = data.get("at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
        raise RecordingError(f"{where}.at: expected seconds as a number, found {at!r}")
    frame = Frame(*(_b64(data.get(key), f"{where}.{key}") for key in _FRAME_FIELDS), at=at)
    try:
        decode_frame(frame)
    except structs.EthtoolParseError as exc:
        field = {structs.ETHTOOL_GSSET_INFO: "sset_info", structs.ETHTOOL_GSTRINGS: "gstrings",
                 structs.ETHTOOL_GSTATS: "gstats"}.get(exc.command, "frame")
        raise RecordingError(f"{where}.{field}: {exc}") from None
    return frame


def _interface(data: object, where: str) -> InterfaceRecording:
    if not isinstance(data, dict):
        raise RecordingError(f"{where}: expected an object")
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise RecordingError(f"{where}.frames: expected a non-empty list")
    drvinfo = _b64(data.get("drvinfo"), f"{where}.drvinfo")
    try:
        structs.parse_drvinfo(drvinfo)
    except structs.EthtoolParseError as exc:
        raise RecordingError(f"{where}.drvinfo: {exc}") from None
    return InterfaceRecording(drvinfo, tuple(_frame(f, f"{where}.frames[{i}]")
                                             for i, f in enumerate(frames)))


def recording_from_json(data: Any) -> Recording:
    """Validate a decoded JSON document; every answer is parsed once so errors surface here."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise RecordingError(f"$.format: expected {FORMAT!r}, found {found!r}")
    if not isinstance(data.get("source", ""), str):
        raise RecordingError("$.source: expected text")
    interfaces = data.get("interfaces")
    if not isinstance(interfaces, dict) or not interfaces:
        raise RecordingError("$.interfaces: expected a non-empty object")
    return Recording(data.get("source", ""),
                     {name: _interface(value, _where(name)) for name, value in interfaces.items()})


def load_recording(path: str | Path) -> Recording:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{path}: cannot read the recording: {exc}") from None
    try:
        return recording_from_json(data)
    except RecordingError as exc:
        raise RecordingError(f"{path}: {exc}") from None


def dump_recording(recording: Recording) -> str:
    """The JSON text save_recording writes (stable, so generated files can be diffed)."""
    def enc(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    def frame(f: Frame) -> dict[str, object]:
        out: dict[str, object] = {key: enc(getattr(f, key)) for key in _FRAME_FIELDS}
        return out if f.at is None else out | {"at": f.at}

    data = {"format": FORMAT, "source": recording.source, "interfaces": {
        name: {"drvinfo": enc(iface.drvinfo), "frames": [frame(f) for f in iface.frames]}
        for name, iface in recording.interfaces.items()}}
    return json.dumps(data, indent=1) + "\n"


def save_recording(recording: Recording, path: str | Path) -> None:
    Path(path).write_text(dump_recording(recording))


def _record_frame(transport: EthtoolTransport, ifname: str, at: float) -> Frame:
    """One raw read; redone when the stat set changes between the ioctls (CountMismatch)."""
    for _ in range(_RECORD_ATTEMPTS):
        sset = bytes(transport.call(ifname, structs.ETHTOOL_GSSET_INFO,
                                    structs.pack_sset_info_request()))
        count = structs.parse_sset_info(sset)
        if count == 0:  # no stats: nothing to ask the kernel; store what "none" looks like
            return Frame(sset, structs.encode_gstrings_response([]),
                         structs.encode_gstats_response([]), at)
        names = bytes(transport.call(ifname, structs.ETHTOOL_GSTRINGS,
                                     structs.pack_gstrings_request(count)))
        values = bytes(transport.call(ifname, structs.ETHTOOL_GSTATS,
                                      structs.pack_gstats_request(count)))
        frame = Frame(sset, names, values, at)
        try:
            decode_frame(frame)
        except structs.CountMismatch:
            continue
        return frame
    raise RecordingError(f"{ifname}: the stat count kept changing ({_RECORD_ATTEMPTS} tries)")


def record(transport: EthtoolTransport, interfaces: Sequence[str], frames: int,
           interval: float, source: str, *, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> Recording:
    """Record what ``transport`` answers, raw, ``frames`` times per interface."""
    drvinfo = {name: bytes(transport.call(name, structs.ETHTOOL_GDRVINFO,
                                          structs.pack_drvinfo_request()))
               for name in interfaces}
    taken: dict[str, list[Frame]] = {name: [] for name in interfaces}
    start = clock()
    for i in range(frames):
        for name in interfaces:
            taken[name].append(_record_frame(transport, name, round(clock() - start, 3)))
        if i + 1 < frames:
            sleep(interval)
    return Recording(source, {name: InterfaceRecording(drvinfo[name], tuple(taken[name]))
                              for name in interfaces})


def show(recording: Recording) -> str:
    """Every frame decoded, in `ethtool -S` format under a heading."""
    parts = [f"# source: {recording.source}\n"]
    for name, iface in recording.interfaces.items():
        info = structs.parse_drvinfo(iface.drvinfo)
        for i, frame in enumerate(iface.frames):
            at = "" if frame.at is None else f" at {frame.at}s"
            parts.append(f"# {name} (driver {info.driver}) frame {i}{at}\n")
            parts.append(format_ethtool_s(decode_frame(frame)))
    return "".join(parts)


def _at_least(low: float, kind: Callable[[str], float]) -> Callable[[str], float]:
    def convert(text: str) -> float:
        value = kind(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is below {low}")
        return value
    return convert


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m otel_netreceiver.ethtool.recording")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record this kernel's raw ethtool answers")
    rec.add_argument("interfaces", nargs="+")
    rec.add_argument("--frames", type=_at_least(1, int), default=1)
    rec.add_argument("--interval", type=_at_least(0.0, float), default=1.0,
                     help="seconds between frames; on ENA keep it >= 1 (each read is an "
                          "admin command under RTNL)")
    rec.add_argument("--source", default="", help="free text: where the data came from")
    rec.add_argument("-o", "--output", required=True)
    sub.add_parser("show", help="print a recording like `ethtool -S`").add_argument("file")
    return parser


def _default_source(interfaces: Sequence[str]) -> str:
    uname = os.uname()
    return (f"raw SIOCETHTOOL answers for {', '.join(interfaces)} recorded on {uname.nodename} "
            f"(Linux {uname.release}) at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
            "by python -m otel_netreceiver.ethtool.recording record")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "show":
            sys.stdout.write(show(load_recording(args.file)))
            return 0
        from otel_netreceiver.ethtool.transport import IoctlTransport

        source = args.source or _default_source(args.interfaces)
        with IoctlTransport() as transport:
            recording = record(transport, args.interfaces, args.frames, args.interval, source)
        save_recording(recording, args.output)
    except (OSError, ValueError) as exc:  # EthtoolError, RecordingError, parse errors
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
