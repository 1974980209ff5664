"""Recordings of SIOCETHTOOL responses: the raw bytes a kernel returned, replayable.

Format (JSON): ``{"format": FORMAT, "source": "...", "interfaces": {ifname:
{"drvinfo": b64, "frames": [{"sset_info": b64, "gstrings": b64, "gstats": b64,
"at": seconds?}]}}}``. Recorded bytes go through the same parsers as live ones.

    python -m otel_netreceiver.ethtool.recording record eth0 --frames 5 --interval 1 -o out.json
    python -m otel_netreceiver.ethtool.recording show out.json
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from otel_netreceiver.ethtool import structs

FORMAT = "otel-netreceiver/ethtool-recording/1"


class RecordingError(ValueError):
    """A recording file that cannot be used; names the file and the JSON path."""


@dataclass(frozen=True)
class Frame:
    sset_info: bytes
    gstrings: bytes
    gstats: bytes
    at: float | None = None


@dataclass(frozen=True)
class InterfaceRecording:
    drvinfo: bytes
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class Recording:
    source: str
    interfaces: dict[str, InterfaceRecording] = field(default_factory=dict)


def recording_from_stats(interfaces: dict, source: str) -> Recording:
    """``{ifname: (DriverInfo, [ {stat: value}, ... ])}`` → the bytes a kernel would return."""
    result = {}
    for name, (info, frames) in interfaces.items():
        encoded = tuple(Frame(structs.encode_sset_info_response(len(f)),
                              structs.encode_gstrings_response(list(f)),
                              structs.encode_gstats_response(list(f.values()))) for f in frames)
        result[name] = InterfaceRecording(structs.encode_drvinfo_response(info), encoded)
    return Recording(source, result)


def _b64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise RecordingError(f"{where}: expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise RecordingError(f"{where}: not base64 ({exc})") from exc


def _interface(data: object, where: str) -> InterfaceRecording:
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list) or not data["frames"]:
        raise RecordingError(f"{where}: expected an object with a non-empty 'frames' list")
    frames = []
    for i, frame in enumerate(data["frames"]):
        at = f"{where}.frames[{i}]"
        if not isinstance(frame, dict):
            raise RecordingError(f"{at}: expected an object")
        frames.append(Frame(_b64(frame.get("sset_info"), f"{at}.sset_info"),
                            _b64(frame.get("gstrings"), f"{at}.gstrings"),
                            _b64(frame.get("gstats"), f"{at}.gstats"), frame.get("at")))
    return InterfaceRecording(_b64(data.get("drvinfo"), f"{where}.drvinfo"), tuple(frames))


def load_recording(path: str | Path) -> Recording:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{path}: cannot read the recording: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RecordingError(f"{path}: $.format: expected {FORMAT!r}")
    interfaces = data.get("interfaces")
    if not isinstance(interfaces, dict) or not interfaces:
        raise RecordingError(f"{path}: $.interfaces: expected a non-empty object")
    try:
        return Recording(str(data.get("source", "")),
                         {name: _interface(value, f"$.interfaces.{name}")
                          for name, value in interfaces.items()})
    except RecordingError as exc:
        raise RecordingError(f"{path}: {exc}") from None


def save_recording(recording: Recording, path: str | Path) -> None:
    def enc(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    data = {"format": FORMAT, "source": recording.source, "interfaces": {
        name: {"drvinfo": enc(iface.drvinfo), "frames": [
            {"sset_info": enc(f.sset_info), "gstrings": enc(f.gstrings), "gstats": enc(f.gstats),
             **({"at": f.at} if f.at is not None else {})} for f in iface.frames]}
        for name, iface in recording.interfaces.items()}}
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def decode_frames(iface: InterfaceRecording) -> list[dict[str, int]]:
    """Each frame as {stat: value}, through the same parsers the reader uses."""
    out = []
    for frame in iface.frames:
        count = structs.parse_sset_info(frame.sset_info)
        names = structs.parse_gstrings(frame.gstrings, count)
        out.append(dict(zip(names, structs.parse_gstats(frame.gstats, count), strict=True)))
    return out


def record(interfaces: list[str], frames: int, interval: float, source: str) -> Recording:
    """Record what this kernel answers, raw, ``frames`` times per interface."""
    from otel_netreceiver.ethtool.transport import IoctlTransport

    transport = IoctlTransport()
    drv = {n: bytes(transport.call(n, structs.ETHTOOL_GDRVINFO, structs.pack_drvinfo_request()))
           for n in interfaces}
    taken: dict[str, list[Frame]] = {n: [] for n in interfaces}
    start = time.monotonic()
    for i in range(frames):
        for name in interfaces:
            sset = bytes(transport.call(name, structs.ETHTOOL_GSSET_INFO,
                                        structs.pack_sset_info_request()))
            count = structs.parse_sset_info(sset)
            strings = bytes(transport.call(name, structs.ETHTOOL_GSTRINGS,
                                           structs.pack_gstrings_request(count)))
            stats = bytes(transport.call(name, structs.ETHTOOL_GSTATS,
                                         structs.pack_gstats_request(count)))
            taken[name].append(Frame(sset, strings, stats, round(time.monotonic() - start, 3)))
        if i + 1 < frames:
            time.sleep(interval)
    transport.close()
    return Recording(source, {n: InterfaceRecording(drv[n], tuple(taken[n])) for n in interfaces})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otel_netreceiver.ethtool.recording")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record this kernel's raw ethtool answers")
    rec.add_argument("interfaces", nargs="+")
    rec.add_argument("--frames", type=int, default=1)
    rec.add_argument("--interval", type=float, default=1.0)
    rec.add_argument("--source", default="")
    rec.add_argument("-o", "--output", required=True)
    show = sub.add_parser("show", help="print a recording like `ethtool -S`")
    show.add_argument("file")
    args = parser.parse_args(argv)
    if args.command == "record":
        import os
        import platform

        source = args.source or (f"recorded on {platform.node()} (Linux {os.uname().release}) "
                                 f"at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        save_recording(record(args.interfaces, args.frames, args.interval, source), args.output)
        return 0
    recording = load_recording(args.file)
    print(f"# {recording.source}")
    for name, iface in recording.interfaces.items():
        info = structs.parse_drvinfo(iface.drvinfo)
        for i, frame in enumerate(decode_frames(iface)):
            print(f"{name} (driver {info.driver}) frame {i}:\nNIC statistics:")
            print("\n".join(f"     {k}: {v}" for k, v in frame.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
