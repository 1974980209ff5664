"""The collector protocol: one method to collect, one to say whether it can.

Modelled on prometheus/client_python's one-method collector. A collector is
built from its configuration section and the host roots, holds whatever
handles it needs (a socket, a BPF program), and is closed when the
configuration that built it is replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from otel_netreceiver.model import Collection, ProbeStatus


@dataclass(frozen=True, slots=True)
class Traits:
    """How the runtime treats a collector, declared by the collector, never read off its name.

    A collector without a ``traits`` attribute has the defaults: read on its own schedule
    only, its series compared from their first observation.
    """

    refreshed: bool = False  # a node-API question reads it again before it is answered
    event_timed: bool = False  # ...unless its last read came after the caller's error
    born_at_zero: bool = False  # its series appear with their first event (history/store.py)


DEFAULT_TRAITS = Traits()


def traits_of(collector: object) -> Traits:
    """The collector's declared traits, or the defaults."""
    traits = getattr(collector, "traits", DEFAULT_TRAITS)
    return traits if isinstance(traits, Traits) else DEFAULT_TRAITS


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


# A collector may also have ``housekeep()``: slow upkeep (giving memory back) that its
# runner calls after each of the collector's own scheduled cycles, never when a node-API
# question reads the collector again (runtime/scheduler.py).
