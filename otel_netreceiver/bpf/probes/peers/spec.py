"""The peers probe's rendering hooks and its cgroup attachment.

The LPM trie's C declaration comes from peers/lpm.py (one layout for the program, the
user-space writer and the kernel test). Attachment is the dns probe's: two
BPF_PROG_TYPE_CGROUP_SKB programs on the cgroup v2 root through bpf_link, detached when the
link's file is closed (bpf/probes/dns/spec.py has the why), so both probes can later be one
program on the same hook.
"""

from __future__ import annotations

import os
from typing import Any

from otel_netreceiver.bpf.probes.dns.spec import (
    BPF_CGROUP_INET_EGRESS,
    BPF_CGROUP_INET_INGRESS,
    CGROUP_ROOTS,
    cgroup_root,
    link_create,
)
from otel_netreceiver.bpf.programs import Formats
from otel_netreceiver.peers.lpm import declaration

TABLE = "peer_table"
COUNTS_MAX = 16384  # (namespace, class, zone, direction) rows: ~16 per pod that talks


def text(rendered: str, formats: Formats) -> str:
    """ProbeSpec.text: the LPM trie's key, value and map in place of PEER_TABLE."""
    return rendered.replace("PEER_TABLE", declaration(TABLE), 1)


def defines(formats: Formats, config: Any) -> dict[str, Any]:
    return {"PEER_COUNTS_MAX": COUNTS_MAX}


class PeersObject:
    """The loaded bcc object plus its cgroup links; cleanup() detaches both.

    Acts like the bcc object for the collector (tables by name, funcs, cleanup), keeps the
    reader's state between cycles (``state``: the installed peer table), and
    socket_hooks(on) for bench/bench_workload.py's rounds with and without.
    """

    def __init__(self, bpf: Any, root: str) -> None:
        from bcc import BPF

        self._bpf, self._root = bpf, root
        self._programs = [(bpf.load_func(name, BPF.CGROUP_SKB).fd, kind)
                          for name, kind in ((b"peers_egress", BPF_CGROUP_INET_EGRESS),
                                             (b"peers_ingress", BPF_CGROUP_INET_INGRESS))]
        self._links: list[int] = []
        self.state: Any = None  # the reader's (bpf/probes/peers/reader.py)
        self.attach()

    def attach(self) -> None:
        if self._links:
            return
        target = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for prog_fd, kind in self._programs:
                self._links.append(link_create(prog_fd, target, kind))
        except OSError:
            self.detach()
            raise
        finally:
            os.close(target)

    def detach(self) -> None:
        while self._links:
            os.close(self._links.pop())

    def socket_hooks(self, on: bool) -> None:
        self.attach() if on else self.detach()

    def __getitem__(self, name: bytes) -> Any:
        return self._bpf[name]

    def __getattr__(self, name: str) -> Any:  # funcs, tracepoint_fds, ...
        return getattr(self._bpf, name)

    def cleanup(self) -> None:
        self.detach()
        self._bpf.cleanup()


def finish(bpf: Any) -> PeersObject:
    """ProbeSpec.finish: attach the socket programs to the cgroup v2 root."""
    root = cgroup_root()
    if root is None:
        raise RuntimeError("no cgroup v2 hierarchy mounted (looked at "
                           f"{', '.join(CGROUP_ROOTS)}): the socket hooks need one")
    return PeersObject(bpf, root)
