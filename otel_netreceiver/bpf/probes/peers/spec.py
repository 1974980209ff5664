"""The peers probe's rendering hooks, its cgroup attachment and its cache's generation.

The LPM trie's C declaration comes from peers/lpm.py (one layout for the program, the
user-space writer and the kernel test). Attachment: two BPF_PROG_TYPE_CGROUP_SKB programs on
the cgroup v2 root through bpf_link, detached when the link's file is closed
(bpf/socket_hooks.py has the why), or, with other socket-hook probes on, its handler
peer_skb in their shared programs (bpf/compose_hooks.py).

The program keeps, per CPU and per namespace (a slot by namespace cookie), the last peer
address it classed and the answer (counting.c ``peer_last``), valid while ``peer_gen``
holds the generation it was read under: ``bump_generation`` after every rewrite of the
trie makes every CPU look again.
"""

from __future__ import annotations

from typing import Any

from otel_netreceiver.bpf.programs import Formats
from otel_netreceiver.bpf.socket_hooks import attacher
from otel_netreceiver.peers.lpm import declaration

TABLE = "peer_table"
GENERATION = "peer_gen"
COUNTS_MAX = 16384  # (namespace, class, zone, direction) rows: ~16 per pod that talks
CACHE_SLOTS = 64  # per CPU, by namespace cookie modulo (a power of two): 28 bytes each


def text(rendered: str, formats: Formats) -> str:
    """ProbeSpec.text: the LPM trie's key, value and map in place of PEER_TABLE."""
    return rendered.replace("PEER_TABLE", declaration(TABLE), 1)


TOP_MAX = 16384  # (namespace, peer address, direction) rows per interval; LRU beyond


def defines(formats: Formats, config: Any) -> dict[str, Any]:
    """PEER_TOP_MAX (the per-peer table) only when the top-peer records are on."""
    out: dict[str, Any] = {"PEER_COUNTS_MAX": COUNTS_MAX, "PEER_CACHE_SLOTS": CACHE_SLOTS}
    if getattr(config, "peers_top", 0) > 0:
        out["PEER_TOP_MAX"] = TOP_MAX
    return out


def bump_generation(table: Any) -> int:
    """Invalidate every CPU's cached class (``table``: the bcc ``peer_gen`` array), after
    the trie was written; the new generation (wraps at 2**32: an entry that old would need
    2**32 rewrites without a packet on its CPU)."""
    key = table.Key(0)
    value = (int(table[key].value) + 1) & 0xFFFFFFFF
    table[key] = table.Leaf(value)
    return value


# ProbeSpec.finish: the socket programs on the cgroup v2 root, or peer_skb called by the
# composite's entries when another socket-hook probe is on (bpf/compose_hooks.py)
finish = attacher("peers", "peer_skb")
