"""The registered probes, in order, and every table derived from them.

Adding a probe: a folder here with its C and a module defining ``PROBE``
(bpf/probe.py), appended to ``REGISTERED`` (docs/architecture.md, "Adding a
probe"). Append, never insert: an event type's number in the kernel (EV_<name>)
is its position among the event types of the registered probes, in this order,
and recorded data and goldens depend on it.
"""

from __future__ import annotations

from otel_netreceiver.bpf.probe import EventType, Probe
from otel_netreceiver.bpf.probes import (
    dns,
    kernellatency,
    net_softirq,
    netiftxlat,
    packetloss,
    peers,
    socketlatency,
    tcpreset,
    tcpretrans,
    tcptwrcv,
    virtcmdlatency,
)
from otel_netreceiver.bpf.programs import ProbeSpec

REGISTERED: tuple[Probe, ...] = (
    tcpreset.PROBE,
    packetloss.PROBE,
    net_softirq.PROBE,
    netiftxlat.PROBE,
    tcpretrans.PROBE,
    virtcmdlatency.PROBE,
    socketlatency.PROBE,
    kernellatency.PROBE,
    tcptwrcv.PROBE,
    dns.PROBE,
    peers.PROBE,
)


def by_name(probes: tuple[Probe, ...]) -> dict[str, Probe]:
    names = [p.name for p in probes]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"probes registered twice: {sorted(duplicates)}")
    return {p.name: p for p in probes}


def event_types(probes: tuple[Probe, ...]) -> tuple[EventType, ...]:
    """Every event type, numbered by position (EV_<name>)."""
    types = tuple(t for p in probes for t in p.event_types)
    names = [t.name for t in types]
    if len(set(names)) != len(names):
        raise ValueError(f"event types registered twice: {names}")
    return types


UNITS: dict[str, Probe] = by_name(REGISTERED)
# counting programs (collectors.ebpf.probes) and event-record programs, by probe name
PROBES: dict[str, ProbeSpec] = {p.name: p.counting for p in REGISTERED if p.counting}
EVENT_PROBES: dict[str, ProbeSpec] = {p.name: p.events for p in REGISTERED if p.events}
EVENT_TYPES: tuple[EventType, ...] = event_types(REGISTERED)
EVENT_NAMES: tuple[str, ...] = tuple(t.name for t in EVENT_TYPES)
# event type → the probe whose program emits it
PROBE_OF: dict[str, str] = {t.name: p.name for p in REGISTERED for t in p.event_types}
DEFAULT_PROBES: tuple[str, ...] = tuple(p.name for p in REGISTERED if p.default and p.counting)
DEFAULT_EVENT_TYPES: tuple[str, ...] = tuple(t.name for t in EVENT_TYPES if t.default)
