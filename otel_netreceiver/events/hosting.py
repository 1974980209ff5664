"""One owner per tracepoint: event handlers compiled into the counting collector's objects.

A probe's counters (collectors/ebpf.py) and its event records (events/source.py) hook the
same tracepoints. As two objects they are two program invocations per event, and the
invocation is most of what a program costs (docs/architecture.md, Per-packet budget): on a
drop flood, the PACKETLOSS record program was half the agent's cost per datagram. So when
both are on, the counting collector compiles the event handler into its object on that
tracepoint (bpf/compose.py, ``Hosted``) and the event source opens its perf buffer on that
object instead of loading its own. The same for a probe at the node's sockets (dns): its
counting programs run at every packet end, and its counting text calls the event handler
itself where HOSTED_EVENTS_<PROBE> is defined (bpf/compose.py ``hosted_fits``), alone or
in the socket-hook composite with the other probes there (bpf/compose_hooks.py: dns with
peers is still one program per packet end).

The two collectors are built and closed together (runtime/agent.py rebuilds all collectors
on a changed configuration), in either order; the object is shared by reference count and
cleaned up by whichever lets go last, after the event source's poll thread has stopped. If
the combined object is refused (compiler, verifier), the counting probes load on their own
(bpf/loader.py; a socket-hook composite first loads again without the event handlers) and
nothing is hosted: the event source loads its own object as before.
What is recorded and counted is the same either way: the same handler text, the same
budget window, suppressed and failed counts (include/events.h), now in the shared object.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.compose import Hosted, conflicts, declared, hosted_fits
from otel_netreceiver.bpf.probes import EVENT_PROBES
from otel_netreceiver.bpf.programs import ProbeSpec
from otel_netreceiver.events.programs import (
    EventSettings,
    event_defines,
    event_handler,
    event_offsets,
    events_header,
    probes_for,
)


class EventHosting:
    """Which event handlers the counting collector compiles in, and the objects holding them.

    ``settings`` and ``timing_sample`` are the event source's (the same #defines as an event
    object of its own).
    """

    def __init__(self, settings: EventSettings, timing_sample: int) -> None:
        self.settings, self.timing_sample = settings, timing_sample
        self.wanted = probes_for(settings.types)
        self._objects: dict[str, Any] = {}  # probe → the object holding its event handler
        self._users: dict[int, int] = {}  # id(object) → holders (collector, event source)
        self._lock = threading.Lock()

    def events_of(self, group: Sequence[ProbeSpec]) -> tuple[ProbeSpec, ...]:
        """The event specs that can join ``group``'s object: wanted, fitting its
        tracepoints, and declaring nothing the counting text also declares."""
        out = tuple(EVENT_PROBES[s.name] for s in group
                    if s.name in self.wanted and hosted_fits(s, EVENT_PROBES[s.name]))
        # a probe's two texts share its name, so compare what they declare directly
        # (net_softirq's both declare struct vec_args: compiled alone, not hosted)
        mine = {n for s in group for n in declared(s)}
        # a header a probe's two texts both include is included once, meant to be shared
        # (dns: include/dnstcp.h)
        own = {f"header {h}" for s in group for e in out if e.name == s.name
               for h in set(s.headers) & set(e.headers)}
        if any((declared(e) & mine) - own for e in out) or conflicts(out):
            return ()
        return out

    def hosted(self, group: Sequence[ProbeSpec], btf: Btf | None) -> Hosted | None:
        """What bpf/compose.py needs to compile ``group``'s event handlers in (None: none)."""
        events = self.events_of(group)
        if not events or (btf is None and any(e.needs_btf for e in events)):
            return None  # the object was built without BTF: its event offsets are unknown
        offsets = event_offsets(btf) if btf is not None else {}  # as events/source.py
        defines: dict[str, object] = {**offsets, **event_defines(self.settings),
                                      "TIMING_SAMPLE": self.timing_sample}
        return Hosted(events, events_header(), defines,
                      lambda spec, formats: event_handler(spec, formats, defines))

    def adopt(self, probes: Sequence[str], bpf: Any) -> None:
        """The counting collector loaded ``bpf`` with these probes' event handlers."""
        with self._lock:
            self._users[id(bpf)] = self._users.get(id(bpf), 0) + 1
            self._objects.update(dict.fromkeys(probes, bpf))

    def owns(self, bpf: Any) -> bool:
        return id(bpf) in self._users

    def take(self, probe: str) -> Any | None:
        """The object holding ``probe``'s event handler (the event source becomes a holder),
        or None: load an event object of its own. One ``release`` per ``take``."""
        with self._lock:
            bpf = self._objects.get(probe)
            if bpf is None or id(bpf) not in self._users:
                return None
            self._users[id(bpf)] += 1
            return bpf

    def release(self, bpf: Any) -> None:
        """A holder lets go; the last one detaches and unloads the object."""
        with self._lock:
            left = self._users.get(id(bpf), 1) - 1
            if left > 0:
                self._users[id(bpf)] = left
                return
            self._users.pop(id(bpf), None)
            self._objects = {p: b for p, b in self._objects.items() if b is not bpf}
        bpf.cleanup()
