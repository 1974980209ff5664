"""A transport wrapper that records which ethtool commands a reader issues, by name."""

from __future__ import annotations

from otel_netreceiver.ethtool import structs
from otel_netreceiver.ethtool.transport import EthtoolTransport


class Counting:
    """Wraps a transport and records the commands issued, by name."""

    def __init__(self, inner: EthtoolTransport) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def call(self, ifname: str, command: int, buf: bytearray) -> bytearray:
        self.calls.append(structs.command_name(command))
        return self.inner.call(ifname, command, buf)

    def close(self) -> None:
        self.inner.close()
