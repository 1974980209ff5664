"""peers: bytes and packets per pod by the peer's class (same pod, same node, same zone,
other zone, other VPC, internet, link-local) and zone, at the pods' sockets (cgroup_skb on
the cgroup v2 root), classed in the kernel by one LPM trie lookup. Opt-in: it runs on every
packet of every local socket.

counting.c is the program, spec.py its rendering hooks and cgroup attachment, reader.py
the table sync and the map rows → points, catalogue.py its metrics.
"""

from __future__ import annotations

from otel_netreceiver.bpf.probe import Probe
from otel_netreceiver.bpf.probes.peers.catalogue import METRICS
from otel_netreceiver.bpf.probes.peers.reader import read
from otel_netreceiver.bpf.probes.peers.spec import defines, finish, text
from otel_netreceiver.bpf.programs import ProbeSpec

PROBE = Probe(
    "peers",
    ProbeSpec("peers", "counting.c", (), package=__name__, headers=("sockhook.h",),
              defines=defines, text=text, finish=finish),
    read,
    METRICS,
    default=False,
    opt_in="runs at every local socket's every packet (cgroup_skb ingress and egress)",
)
