"""What a probe is: one unit registered in bpf/probes/__init__.py, described here.

A probe's folder (bpf/probes/<name>/) holds its counting program, its event-record
program if it has one, and one module defining ``PROBE``: the programs' specs, the
reader that turns its maps into points, its catalogue rows, its event types with
their severities and naming, and whether it is on by default. Everything listed
elsewhere (the config choices, the catalogue's probe rows, the event type numbers,
``probes --print-program``) is derived from the registered probes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otel_netreceiver.bpf.programs import ProbeSpec
from otel_netreceiver.model import Kind, Point

if TYPE_CHECKING:
    from otel_netreceiver.bpf.maps import ProbeMaps
    from otel_netreceiver.events.model import Names, Record
    from otel_netreceiver.netns.resolver import NetnsResolver


@dataclass(frozen=True, slots=True)
class MetricRow:
    """A catalogue row (catalogue.py adds the pod attributes to ``pod`` rows)."""

    name: str
    kind: Kind
    unit: str
    attributes: tuple[str, ...]
    description: str
    pod: bool


# (record, names) → the record's reason text ("" for none)
ReasonOf = Callable[["Record", "Names"], str]
# record → the type's own attributes (cpu and latency.ns are added for every type)
AttributesOf = Callable[["Record"], Mapping[str, str]]


def _no_reason(record: Record, names: Names) -> str:
    return ""


def _no_attributes(record: Record) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of event record; its number in the kernel (EV_<name>) is its position among
    the registered probes' event types."""

    name: str
    severity_number: int  # OpenTelemetry logs data model: INFO = 9, WARN = 13
    severity_text: str
    default: bool  # in collectors.events.types by default
    reason: ReasonOf = _no_reason
    attributes: AttributesOf = _no_attributes
    # records whose netns field is 0 and that carry the namespace cookie instead (programs
    # that know only bpf_get_netns_cookie, e.g. cgroup_skb): record → cookie
    cookie: Callable[[Record], int] | None = None


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    counting: ProbeSpec | None  # loaded by collectors.ebpf when listed in its probes
    read: Callable[[ProbeMaps], list[Point]] | None
    metrics: tuple[MetricRow, ...]
    default: bool  # in collectors.ebpf.probes by default
    events: ProbeSpec | None = None  # loaded by the events source for its event types
    event_types: tuple[EventType, ...] = ()
    # why it is opt-in (per-packet cost), for the configuration docs; "" when on by default
    opt_in: str = ""
    # names kernel addresses (drop sites) from kallsyms: the table is read when it loads
    symbols: bool = False
    # (proc_root, resolver) → a callable the event source calls after each poll with the
    # loaded event object: records found in user space (raw bytes, as the kernel writes
    # them: timeouts nothing in the kernel fires for), rate-limited like the kernel's
    event_sweep: Callable[[str, NetnsResolver], Callable[[Any], list[bytes]]] | None = None
