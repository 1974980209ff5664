"""The floors bench_dns_tools.py sets the dns probe against, on the probe's own hook
(cgroup_skb, inet egress and ingress on the cgroup v2 root):

- bpftrace's ``@ = count();`` compiled by bcc as cgroup_skb programs (bench_dns_count.c:
  bpftrace itself cannot attach there), the per-packet floor of "a program on every
  packet" on this hook;
- counting.c cut to the DNS header and one per-pod count per DNS packet
  (bench_dns_breakdown.py's "+ header, one per-pod count" stage), the floor of any program
  that counts every DNS packet per pod: port filter, 12-byte header, netns cookie, one
  per-CPU hash update, nothing matched.

A helper module, not a benchmark (no ``bench_`` prefix: tests/unit/test_bench_scripts.py
starts every bench_*.py); the script importing it put the checkout on sys.path (benchpath).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.bench_dns_breakdown import COUNTING, VARIANTS, patched

COUNT_C = Path(__file__).parent / "bench_dns_count.c"
PER_POD = "+ header, one per-pod count"
CGROUP_ROOT = "/sys/fs/cgroup/unified"  # bench_dns_hook.py's: the cgroup v2 root
Switch = Callable[[bool], None]


class CountOnHook:
    """bench_dns_count.c's two programs, attached and detached together (BPF_F_ALLOW_MULTI,
    as bench_dns_hook.py's "cgroup_skb, empty": the agent's programs stay attached)."""

    def __init__(self) -> None:
        from bcc import BPF, BPFAttachType

        self.bpf = BPF(text=COUNT_C.read_text().encode())
        self.progs = {side: self.bpf.load_func(f"count_{side}".encode(), BPF.CGROUP_SKB)
                      for side in ("egress", "ingress")}
        self.kinds = {"egress": BPFAttachType.CGROUP_INET_EGRESS,
                      "ingress": BPFAttachType.CGROUP_INET_INGRESS}
        self.root = os.open(CGROUP_ROOT, os.O_RDONLY)
        self.attached = False

    def switch(self, on: bool) -> None:
        from bcc import BPF

        if on == self.attached:
            return
        for side, prog in self.progs.items():
            if on:
                BPF.attach_func(prog, self.root, self.kinds[side], flags=2)  # ALLOW_MULTI
            else:
                BPF.detach_func(prog, self.root, self.kinds[side])
        self.attached = on

    def fds(self) -> dict[str, int]:
        return {f"count() on the hook/count_{side}": prog.fd for side, prog in self.progs.items()}

    def close(self) -> None:
        self.switch(False)
        self.bpf.cleanup()
        os.close(self.root)


def probe_switch(probe: Any) -> Switch:
    """Attach or detach everything a loaded dns probe hooks (socket programs, kfree_skb)."""
    def switch(on: bool) -> None:
        probe.socket_hooks(on)
        if on:
            probe.attach_tracepoint(tp=b"skb:kfree_skb", fn_name=b"dns_no_socket")
        else:
            probe.detach_tracepoint(b"skb:kfree_skb")
    return switch


def per_pod_floor(config: Any) -> Any:
    """counting.c cut to PER_POD, rendered with ``config`` (the bench's cluster DNS, as the
    full probe) and loaded by the agent's loader, attached as it loads."""
    from otel_netreceiver.bpf.loader import BpfLoader
    from otel_netreceiver.bpf.probes import PROBES
    from otel_netreceiver.collectors.ebpf import CountingRender

    spec = replace(PROBES["dns"], text=patched(COUNTING.read_text(), VARIANTS[PER_POD]))
    loader = BpfLoader(config, "/proc", "bench")
    loaded = loader.load_all([spec], CountingRender(config, True))
    if "dns" not in loaded:
        raise RuntimeError(f"the per-pod floor did not load: {loader.statuses}")
    return loaded["dns"]


def socket_fds(label: str, probe: Any) -> dict[str, int]:
    """'label/dns_egress', 'label/dns_ingress' → program fd."""
    return {f"{label}/{name}": probe.funcs[name.encode()].fd
            for name in ("dns_egress", "dns_ingress")}
