"""Read every driver statistic of an interface, as `ethtool -S` does, in-process.

Per read: GSSET_INFO (the count, re-read every time), GSTRINGS only when the
count differs from the cached names, then GSTATS with exactly that count.
REFERENCE.md: newer kernels return zeros when the count does not match, and
the order of stats differs between driver versions, so names are matched by
position within one consistent (count, names, values) triple and the result is
keyed by name. Steady state costs two ioctls per interface.
"""

from __future__ import annotations

from otel_netreceiver.ethtool import structs
from otel_netreceiver.ethtool.transport import EthtoolTransport


class EthtoolReader:
    def __init__(self, transport: EthtoolTransport) -> None:
        self._transport = transport
        self._names: dict[str, tuple[str, ...]] = {}

    def driver(self, ifname: str) -> structs.DriverInfo:
        buf = self._transport.call(ifname, structs.ETHTOOL_GDRVINFO, structs.pack_drvinfo_request())
        return structs.parse_drvinfo(buf)

    def names(self, ifname: str, count: int) -> tuple[str, ...]:
        cached = self._names.get(ifname)
        if cached is None or len(cached) != count:
            buf = self._transport.call(ifname, structs.ETHTOOL_GSTRINGS,
                                       structs.pack_gstrings_request(count))
            cached = structs.parse_gstrings(buf, count)
            self._names[ifname] = cached
        return cached

    def read_stats(self, ifname: str) -> dict[str, int]:
        """{stat name: value}; a name the driver repeats keeps its first value."""
        count = structs.parse_sset_info(self._transport.call(
            ifname, structs.ETHTOOL_GSSET_INFO, structs.pack_sset_info_request()))
        if count == 0:
            return {}
        names = self.names(ifname, count)
        values = structs.parse_gstats(self._transport.call(
            ifname, structs.ETHTOOL_GSTATS, structs.pack_gstats_request(count)), count)
        stats: dict[str, int] = {}
        for name, value in zip(names, values, strict=True):
            stats.setdefault(name, value)
        return stats

    def forget(self, ifname: str) -> None:
        """Drop cached names of an interface that vanished or was recreated."""
        self._names.pop(ifname, None)
