"""Rebuild otel_netreceiver/ethtool/recordings/aws-ena-sample.json from the sample text.

No ENA NIC is reachable from where this project is built and tested, so the
ENA recording is the one real sample published by AWS, kept verbatim as
`ethtool -S` text (tests/data/ethtool/aws-ena-sample.ethtool-S.txt) and
encoded here into the exact bytes a kernel returns for GDRVINFO, GSSET_INFO,
GSTRINGS and GSTATS. Replaying it exercises the same parsers as a live ENA
read; generating it keeps the JSON reproducible (a unit test checks that the
checked-in JSON is what render() produces).

    python scripts/make-ena-recording.py          # write the JSON
    python scripts/make-ena-recording.py --check  # exit 1 if the checked-in JSON is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from otel_netreceiver.ethtool.recording import (
    InterfaceRecording,
    Recording,
    dump_recording,
    frame_from_pairs,
    parse_ethtool_s,
)
from otel_netreceiver.ethtool.structs import DriverInfo, encode_drvinfo_response

ROOT = Path(__file__).resolve().parent.parent
TEXT = ROOT / "tests/data/ethtool/aws-ena-sample.ethtool-S.txt"
JSON = ROOT / "otel_netreceiver/ethtool/recordings/aws-ena-sample.json"
INTERFACE = "eth0"
SOURCE = (
    "Amazon EC2 User Guide, 'Troubleshoot the ENA kernel driver on Linux' "
    "(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-ena.html): the sample "
    "`ethtool -S` output of an ENA interface printed there, its first 16 statistics, in "
    "that order (the rest of that output is not reproduced; docs/background.md, 'ENA "
    "allowance counters'). Kept "
    "verbatim in tests/data/ethtool/aws-ena-sample.ethtool-S.txt. The bytes below are NOT a "
    "kernel's: scripts/make-ena-recording.py produced them from that text with the encoders "
    "of otel_netreceiver/ethtool/structs.py (encode_drvinfo_response, "
    "encode_sset_info_response, encode_gstrings_response, encode_gstats_response). Driver "
    "name 'ena' as GDRVINFO reports it; the sample gives no driver version, firmware or bus "
    "address, so those are empty. Interface name eth0 as in the document."
)


def render() -> str:
    """The JSON text of the recording, from the sample text."""
    pairs = parse_ethtool_s(TEXT.read_text())
    info = DriverInfo("ena", "", "", "", len(pairs))
    interface = InterfaceRecording(encode_drvinfo_response(info), (frame_from_pairs(pairs),))
    return dump_recording(Recording(SOURCE, {INTERFACE: interface}))


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if JSON.read_text() != text:
            print(f"{JSON} is stale: run python scripts/make-ena-recording.py")
            return 1
        return 0
    JSON.write_text(text)
    print(f"wrote {JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
