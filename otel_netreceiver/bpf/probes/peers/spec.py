"""The peers probe's rendering hooks and its cgroup attachment.

The LPM trie's C declaration comes from peers/lpm.py (one layout for the program, the
user-space writer and the kernel test). Attachment is the dns probe's: two
BPF_PROG_TYPE_CGROUP_SKB programs on the cgroup v2 root through bpf_link, detached when the
link's file is closed (bpf/socket_hooks.py has the why), so both probes can later be one
program on the same hook.
"""

from __future__ import annotations

from typing import Any

from otel_netreceiver.bpf.programs import Formats
from otel_netreceiver.bpf.socket_hooks import attacher
from otel_netreceiver.peers.lpm import declaration

TABLE = "peer_table"
COUNTS_MAX = 16384  # (namespace, class, zone, direction) rows: ~16 per pod that talks


def text(rendered: str, formats: Formats) -> str:
    """ProbeSpec.text: the LPM trie's key, value and map in place of PEER_TABLE."""
    return rendered.replace("PEER_TABLE", declaration(TABLE), 1)


TOP_MAX = 16384  # (namespace, peer address, direction) rows per interval; LRU beyond


def defines(formats: Formats, config: Any) -> dict[str, Any]:
    """PEER_TOP_MAX (the per-peer table) only when the top-peer records are on."""
    out: dict[str, Any] = {"PEER_COUNTS_MAX": COUNTS_MAX}
    if getattr(config, "peers_top", 0) > 0:
        out["PEER_TOP_MAX"] = TOP_MAX
    return out


finish = attacher("peers")  # ProbeSpec.finish: the socket programs on the cgroup v2 root
