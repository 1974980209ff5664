"""Driver statistics (`ethtool -S`) through the SIOCETHTOOL ioctl, in-process.

structs: pure pack/parse of the kernel's structs; transport: the ioctl or a
replayed recording; reader: GSSET_INFO -> GSTRINGS (cached) -> GSTATS by name;
recording: raw answers saved as JSON, and a recorder command (not imported
here, so that `python -m otel_netreceiver.ethtool.recording` runs cleanly).
"""

from __future__ import annotations

from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.structs import CountMismatch, DriverInfo, EthtoolParseError
from otel_netreceiver.ethtool.transport import (
    EthtoolError,
    EthtoolTransport,
    InterfaceGone,
    IoctlTransport,
    NotSupported,
    ReplayTransport,
)

__all__ = [
    "CountMismatch",
    "DriverInfo",
    "EthtoolError",
    "EthtoolParseError",
    "EthtoolReader",
    "EthtoolTransport",
    "InterfaceGone",
    "IoctlTransport",
    "NotSupported",
    "ReplayTransport",
]
