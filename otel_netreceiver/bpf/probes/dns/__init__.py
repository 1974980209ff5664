"""dns: DNS queries, responses, latency, timeouts and late answers, and link-local packets,
per pod, at the pods' sockets (cgroup_skb on the cgroup v2 root; skb:kfree_skb for answers
to sockets that are gone). Opt-in: it runs on every packet of every local socket.

counting.c is the program, spec.py its rendering hooks and cgroup attachment, reader.py
the sweep and the map rows → points, catalogue.py its metrics; events.c and events.py the
failure event records with query names (DNS_TIMEOUT, DNS_LATE_ANSWER, DNS_SERVFAIL,
DNS_NXDOMAIN_BURST).
"""

from __future__ import annotations

from otel_netreceiver.bpf.probe import EventType, Probe
from otel_netreceiver.bpf.probes.dns.catalogue import METRICS
from otel_netreceiver.bpf.probes.dns.events import (
    EventSweep,
    cookie_of,
    event_attributes,
    event_reason,
)
from otel_netreceiver.bpf.probes.dns.reader import read
from otel_netreceiver.bpf.probes.dns.spec import defines, event_defines, event_finish, finish
from otel_netreceiver.bpf.programs import Attach, ProbeSpec, StructSpec

_KFREE = (StructSpec("KFREE_ARGS_STRUCT", "skb", "kfree_skb", "kfree_skb_args",
                     ("skbaddr", "reason")),)


def _dns_event(name: str) -> EventType:
    """Opt-in like the probe: loading them attaches socket programs to every packet."""
    return EventType(name, 13, "WARN", False, event_reason, event_attributes, cookie_of)


PROBE = Probe(
    "dns",
    ProbeSpec("dns", "counting.c", (Attach("skb", "kfree_skb", "dns_no_socket"),),
              _KFREE, package=__name__, headers=("sockhook.h", "dnstcp.h"), defines=defines,
              finish=finish),
    read,
    METRICS,
    default=False,
    opt_in="runs at every local socket's every packet (cgroup_skb ingress and egress)",
    events=ProbeSpec("dns", "events.c", (Attach("skb", "kfree_skb", "dnsev_no_socket"),),
                     _KFREE, package=__name__, headers=("dnstcp.h",), defines=event_defines,
                     finish=event_finish),
    # appended after every earlier probe's types: EV_<name> numbers are registration order
    event_types=tuple(_dns_event(n) for n in ("DNS_TIMEOUT", "DNS_LATE_ANSWER", "DNS_SERVFAIL",
                                              "DNS_NXDOMAIN_BURST")),
    event_sweep=EventSweep,
)
