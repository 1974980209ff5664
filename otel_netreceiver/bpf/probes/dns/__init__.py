"""dns: DNS queries, responses, latency, timeouts and late answers, and link-local packets,
per pod, at the pods' sockets (cgroup_skb on the cgroup v2 root; skb:kfree_skb for answers
to sockets that are gone). Opt-in: it runs on every packet of every local socket.

counting.c is the program, spec.py its rendering hooks and cgroup attachment, reader.py
the sweep and the map rows → points, catalogue.py its metrics.
"""

from __future__ import annotations

from otel_netreceiver.bpf.probe import Probe
from otel_netreceiver.bpf.probes.dns.catalogue import METRICS
from otel_netreceiver.bpf.probes.dns.reader import read
from otel_netreceiver.bpf.probes.dns.spec import defines, finish
from otel_netreceiver.bpf.programs import Attach, ProbeSpec, StructSpec

PROBE = Probe(
    "dns",
    ProbeSpec("dns", "counting.c", (Attach("skb", "kfree_skb", "dns_no_socket"),),
              (StructSpec("KFREE_ARGS_STRUCT", "skb", "kfree_skb", "kfree_skb_args",
                          ("skbaddr", "reason")),),
              package=__name__, defines=defines, finish=finish),
    read,
    METRICS,
    default=False,
    opt_in="runs at every local socket's every packet (cgroup_skb ingress and egress)",
)
