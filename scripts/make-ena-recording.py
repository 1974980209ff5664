"""Rebuild otel_netreceiver/ethtool/recordings/aws-ena-sample.json from the sample text.

The text is the `ethtool -S eth0` output printed in AWS's ENA troubleshooting
documentation (as quoted in shared/REFERENCE.md); it is encoded into the exact
bytes a kernel returns for GDRVINFO/GSSET_INFO/GSTRINGS/GSTATS, so replaying it
exercises the same parser as a live ENA read. `--check` exits 1 if the checked-in
JSON differs from what this script would write.

    python scripts/make-ena-recording.py [--check]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from otel_netreceiver.ethtool.recording import recording_from_stats, save_recording
from otel_netreceiver.ethtool.structs import DriverInfo

ROOT = Path(__file__).resolve().parent.parent
TEXT = ROOT / "tests/data/ethtool/aws-ena-sample.ethtool-S.txt"
JSON = ROOT / "otel_netreceiver/ethtool/recordings/aws-ena-sample.json"
SOURCE = ("AWS ENA troubleshooting documentation: sample `ethtool -S eth0` output of an ENA "
          "interface (tests/data/ethtool/aws-ena-sample.ethtool-S.txt), encoded into SIOCETHTOOL "
          "response bytes by scripts/make-ena-recording.py. Driver name 'ena' as GDRVINFO "
          "reports it; the sample does not give the driver version.")


def parse_ethtool_s(text: str) -> dict[str, int]:
    stats: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        name, _, value = line.strip().rpartition(": ")
        stats[name] = int(value)
    return stats


def build(target: Path) -> None:
    stats = parse_ethtool_s(TEXT.read_text())
    info = DriverInfo("ena", "", "", "", len(stats))
    save_recording(recording_from_stats({"eth0": (info, [stats])}, SOURCE), target)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "fresh.json"
            build(fresh)
            if fresh.read_text() != JSON.read_text():
                print(f"{JSON} is stale: run python scripts/make-ena-recording.py")
                return 1
        return 0
    build(JSON)
    print(f"wrote {JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
