"""Recordings derived from the AWS documentation's real ENA sample, for replay tests.

The base frame is the sample exactly as AWS printed it (tests/data/ethtool/
aws-ena-sample.ethtool-S.txt); later frames grow one allowance counter, as on a
node that keeps hitting that allowance. The bytes are the ioctl's, so the
agent parses them with the same code as a live read.
"""

from __future__ import annotations

from pathlib import Path

from otel_netreceiver.ethtool.recording import (
    parse_ethtool_s,
    recording_from_stats,
    save_recording,
)
from otel_netreceiver.ethtool.structs import DriverInfo

SAMPLE = Path(__file__).parent.parent / "data" / "ethtool" / "aws-ena-sample.ethtool-S.txt"


def aws_sample() -> dict[str, int]:
    return dict(parse_ethtool_s(SAMPLE.read_text()))


def write_growing_recording(path: Path, *, grow: str, start_frame: int, step: int, frames: int,
                            interface: str = "eth0") -> None:
    """Frame i has ``grow`` = step * max(0, i - start_frame + 1); everything else as sampled."""
    base = aws_sample()
    series = [base | {grow: base[grow] + step * max(0, i - start_frame + 1)} for i in range(frames)]
    info = DriverInfo("ena", "", "", "", len(base))
    recording = recording_from_stats(
        {interface: (info, series)},
        f"AWS documentation ENA sample with {grow} growing by {step} per read from read "
        f"{start_frame} (tests/support/ena_replay.py)")
    save_recording(recording, path)
