"""The collector protocol: one method to collect, one to say whether it can.

Modelled on prometheus/client_python's one-method collector. A collector is
built from its configuration section and the host roots, holds whatever
handles it needs (a socket, a BPF program), and is closed when the
configuration that built it is replaced.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from otel_netreceiver.model import Collection, ProbeStatus


@runtime_checkable
class Collector(Protocol):
    """Reads one source of the node and returns what it saw."""

    name: str

    def collect(self) -> Collection:
        """Read the source once. Raise only for a failure of the whole source.

        A single vanished object (interface, pod) is not a failure: leave it
        out of the collection.
        """
        ...

    def probe(self) -> ProbeStatus:
        """Say whether this collector can work on this host, and why not."""
        ...

    def close(self) -> None:
        """Release handles (sockets, BPF programs). Called once."""
        ...
