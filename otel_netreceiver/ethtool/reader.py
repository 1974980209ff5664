"""Read every driver statistic of an interface, as `ethtool -S` does, in-process.

A read is GSSET_INFO (the count, asked every time: it is the only cheap way
to notice that the set changed), GSTRINGS only when that count differs from
the cached names', then GSTATS with exactly that count. So a steady-state read
costs two ioctls. Each GSTATS makes an ENA device run an admin command under
RTNL (docs/background.md), another reason not to ask for more than needed.

Why the count is always passed back: kernels disagree on a mismatch (older
ones write the driver's current count whatever we asked, 6.18 answers 0 and
writes nothing, "returns zeros"); structs.CountMismatch catches both and the
read starts over once. Why names are matched rather than positions trusted
across reads: the order differs between driver versions. Names are re-read
only when the count changes or after forget(); a reconfiguration that keeps
the count but reorders the set is invisible to GSSET_INFO, which is why
callers forget() an interface whose ifindex changed (driver reload, recreated
device).
"""

from __future__ import annotations

from otel_netreceiver.ethtool import structs
from otel_netreceiver.ethtool.transport import EthtoolTransport


class EthtoolReader:
    """Driver statistics by name, with the stat names cached per interface."""

    def __init__(self, transport: EthtoolTransport) -> None:
        self._transport = transport
        self._names: dict[str, tuple[str, ...]] = {}
        self._unique: dict[str, bool] = {}  # names of the interface all distinct

    def driver(self, ifname: str) -> structs.DriverInfo:
        buf = self._transport.call(ifname, structs.ETHTOOL_GDRVINFO, structs.pack_drvinfo_request())
        return structs.parse_drvinfo(buf)

    def read_stats(self, ifname: str) -> dict[str, int]:
        """``{stat name: value}``; a name the driver repeats keeps its first value.

        Raises InterfaceGone if the interface vanished, NotSupported if the
        driver has no statistics ioctl, EthtoolParseError on a malformed answer
        (including a count that changed twice in a row).
        """
        try:
            return self._read_once(ifname)
        except structs.CountMismatch:
            # the set changed between two of our ioctls: names may be stale too
            self.forget(ifname)
            return self._read_once(ifname)

    def forget(self, ifname: str) -> None:
        """Drop what is cached for an interface that vanished or was recreated."""
        self._names.pop(ifname, None)
        self._unique.pop(ifname, None)

    def _read_once(self, ifname: str) -> dict[str, int]:
        count = structs.parse_sset_info(self._transport.call(
            ifname, structs.ETHTOOL_GSSET_INFO, structs.pack_sset_info_request()))
        if count == 0:
            self._names.pop(ifname, None)
            return {}
        names = self._names_for(ifname, count)
        values = structs.parse_gstats(self._transport.call(
            ifname, structs.ETHTOOL_GSTATS, structs.pack_gstats_request(count)), count)
        if self._unique[ifname]:
            return dict(zip(names, values, strict=True))
        stats: dict[str, int] = {}
        for name, value in zip(names, values, strict=True):
            stats.setdefault(name, value)
        return stats

    def _names_for(self, ifname: str, count: int) -> tuple[str, ...]:
        cached = self._names.get(ifname)
        if cached is not None and len(cached) == count:
            return cached
        names = structs.parse_gstrings(self._transport.call(
            ifname, structs.ETHTOOL_GSTRINGS, structs.pack_gstrings_request(count)), count)
        self._names[ifname] = names
        self._unique[ifname] = len(set(names)) == len(names)
        return names
