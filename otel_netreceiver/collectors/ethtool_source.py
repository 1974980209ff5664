"""Interfaces and their ethtool statistics, live (ioctl) or replayed from a recording.

Shared by the ENA collector and the generic ethtool collector. Knows which
interface has which driver (GDRVINFO, cached per ifindex), notices an
interface recreated under the same name (new ifindex → its counters restart)
and drops a vanished interface quietly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from otel_netreceiver.collectors.interfaces import InterfaceInfo, list_interfaces
from otel_netreceiver.ethtool.reader import EthtoolReader
from otel_netreceiver.ethtool.transport import (
    EthtoolError,
    EthtoolTransport,
    InterfaceGone,
    IoctlTransport,
    ReplayTransport,
)


@dataclass(frozen=True, slots=True)
class InterfaceStats:
    interface: InterfaceInfo
    driver: str
    stats: dict[str, int]


@dataclass(frozen=True, slots=True)
class SourceRead:
    interfaces: tuple[InterfaceStats, ...]
    errors: tuple[str, ...]
    replaced: frozenset[str]  # interfaces recreated since the previous read


class EthtoolSource:
    """One transport, one reader, one driver cache."""

    def __init__(self, transport: EthtoolTransport,
                 lister: Callable[[], list[InterfaceInfo]], description: str) -> None:
        self._transport = transport
        self._reader = EthtoolReader(transport)
        self._lister = lister
        self._description = description
        self._drivers: dict[str, tuple[int, str]] = {}  # name → (ifindex, driver)

    @classmethod
    def live(cls, sys_root: str) -> EthtoolSource:
        return cls(IoctlTransport(), lambda: list_interfaces(sys_root),
                   f"SIOCETHTOOL, interfaces from {sys_root}/class/net")

    @classmethod
    def replay(cls, path: str) -> EthtoolSource:
        from otel_netreceiver.ethtool.recording import load_recording

        transport = ReplayTransport(load_recording(path))
        names = transport.interfaces()
        return cls(transport, lambda: [InterfaceInfo(n, i + 1, "") for i, n in enumerate(names)],
                   f"replaying {path}")

    def describe(self) -> str:
        return self._description

    def _driver(self, iface: InterfaceInfo, replaced: set[str]) -> str:
        cached = self._drivers.get(iface.name)
        if cached and cached[0] == iface.ifindex:
            return cached[1]
        if cached:
            replaced.add(iface.name)
            self._reader.forget(iface.name)
        driver = self._reader.driver(iface.name).driver
        self._drivers[iface.name] = (iface.ifindex, driver)
        return driver

    def drivers(self) -> dict[str, str]:
        """Driver of every interface ('' where ethtool cannot tell, e.g. lo)."""
        result: dict[str, str] = {}
        for iface in self._lister():
            try:
                result[iface.name] = self._driver(iface, set())
            except EthtoolError:
                result[iface.name] = ""
        return result

    def read(self, wanted: Callable[[str, str], bool]) -> SourceRead:
        """Stats of every interface ``wanted(name, driver)`` accepts."""
        found, errors, replaced = [], [], set()
        interfaces = self._lister()
        for iface in interfaces:
            try:
                driver = self._driver(iface, replaced)
                if wanted(iface.name, driver):
                    found.append(InterfaceStats(iface, driver, self._reader.read_stats(iface.name)))
            except InterfaceGone:
                self._forget(iface.name)
            except EthtoolError as exc:
                if wanted(iface.name, self._drivers.get(iface.name, (0, ""))[1]):
                    errors.append(str(exc))
        present = {i.name for i in interfaces}
        for gone in set(self._drivers) - present:
            self._forget(gone)
        return SourceRead(tuple(found), tuple(errors), frozenset(replaced))

    def _forget(self, name: str) -> None:
        self._drivers.pop(name, None)
        self._reader.forget(name)

    def close(self) -> None:
        self._transport.close()
