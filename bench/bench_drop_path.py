"""Where a drop's nanoseconds go: the parts of the agent's skb:kfree_skb program, one by one.

The agent's program on skb:kfree_skb (packetloss + tcptwrcv counters and the PACKETLOSS
record handler, one object: events/hosting.py) does, per drop: read the namespace key
(skb->dev->nd_net->ns_id, three bpf_probe_read_kernel), count it in a per-CPU hash keyed by
(location, namespace, reason), and ask the record budget (a per-CPU window; suppressed past
the budget). Each variant below is that program cut down or changed in one way, attached
alone to skb:kfree_skb during a UDP flood to a closed port on lo (one kfree_skb per
datagram), its run time per drop from kernel.bpf_stats_enabled (run_time_ns / run_cnt:
includes the two clock reads the statistics add, so "empty" is that overhead, not zero),
medians of three rounds. The workload figure is bench/bench_workload.py's; this one says
which part of the body costs what.

    flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_drop_path.py [--alternate]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
from pathlib import Path
from typing import Any

import benchpath  # noqa: F401  (this checkout on sys.path)

from bench.bench_bpf import bpf_stats
from otel_netreceiver.bpf import tp_btf
from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.programs import header, kernel_offsets

DROPS = 50_000
MAPS = """
struct args { u64 pad; u64 skbaddr; u64 location; u64 rx_sk; u16 protocol; u16 p2; u32 reason; };
struct drop_key { u64 location; u64 netns; u32 reason; u32 pad; };
BPF_PERCPU_HASH(drops, struct drop_key, u64, 16384);
struct drop_slot { u64 seq; struct drop_key key; u64 pending; };
BPF_PERCPU_ARRAY(drop_last, struct drop_slot, 1);
struct ev_win { u64 start; u64 used; u64 jiffy; };
BPF_PERCPU_ARRAY(ev_window, struct ev_win, 16);
BPF_PERCPU_ARRAY(ev_suppressed, u64, 16);
struct ns_cache { u64 ptr; u64 key; u64 gen; };
struct net_slot { u64 seq; struct drop_key key; u64 pending; u64 net; };
BPF_PERCPU_ARRAY(net_last, struct net_slot, 1);
BPF_PERCPU_ARRAY(ns_last, struct ns_cache, 1);
BPF_ARRAY(ns_gen, u64, 1);
"""
NETNS = "u64 sk = a->rx_sk; u64 ns = sk ? netns_key_of_sock(sk) : netns_key_of_skb(a->skbaddr);"
# skb->dev and dev->nd_net only (what a cache validated by the net pointer still reads)
NET_PTR = """u64 dev = 0, net = 0;
bpf_probe_read_kernel(&dev, 8, (void *)(a->skbaddr + OFF_SKB_DEV));
if (dev) bpf_probe_read_kernel(&net, 8, (void *)(dev + OFF_DEV_NET));"""
# a per-CPU cache of the last struct net pointer and its key: 2 reads, the cookie's skipped
# when the pointer repeats. Not exact alone: a freed struct net's address is reused by the
# next namespace (slab), so the cached key can be a dead namespace's
CACHE_NET = "u64 ns; u64 sk = a->rx_sk; if (sk) ns = netns_key_of_sock(sk); else {" + NET_PTR + """
u32 z0 = 0; struct ns_cache *c = ns_last.lookup(&z0);
if (c && net && c->ptr == net) ns = c->key;
else { ns = netns_key_of_net(net); if (c) { c->ptr = net; c->key = ns; } } }"""
# the same with a global generation (a map word bumped whenever a namespace is freed, e.g.
# by a probe there): exact, one more inlined array lookup and compare
CACHE_NET_GEN = "u64 ns; u64 sk = a->rx_sk; if (sk) ns = netns_key_of_sock(sk); else {" + \
    NET_PTR + """
u32 z0 = 0; struct ns_cache *c = ns_last.lookup(&z0); u64 *g = ns_gen.lookup(&z0);
u64 gen = g ? *g : 0;
if (c && net && c->ptr == net && c->gen == gen) ns = c->key;
else { ns = netns_key_of_net(net); if (c) { c->ptr = net; c->key = ns; c->gen = gen; } } }"""
# the lower bound: the skb->dev pointer alone as the cache key (1 read; not exact: a device
# moves between namespaces, and its address is reused)
CACHE_DEV = """u64 ns; u64 sk = a->rx_sk; if (sk) ns = netns_key_of_sock(sk); else {
u64 dev = 0; bpf_probe_read_kernel(&dev, 8, (void *)(a->skbaddr + OFF_SKB_DEV));
u32 z0 = 0; struct ns_cache *c = ns_last.lookup(&z0);
if (c && dev && c->ptr == dev) ns = c->key;
else { ns = netns_key_of_skb(a->skbaddr); if (c) { c->ptr = dev; c->key = ns; } } }"""
HASH = """struct drop_key key = {}; key.location = a->location; key.reason = a->reason;
key.netns = ns; u64 one = 1, *v = drops.lookup(&key); if (v) (*v)++;
else drops.update(&key, &one);"""
# packetloss/counting.c since branch drop-slot: a per-CPU slot with the last key and its
# pending count, changed inside a sequence count (two ordered fetch-adds), flushed to the
# hash when the key changes
RUN = """struct drop_key key = {}; key.location = a->location; key.reason = a->reason;
key.netns = ns; u32 z = 0; struct drop_slot *s = drop_last.lookup(&z); if (!s) return 0;
if (s->pending && s->key.location == key.location && s->key.netns == key.netns
    && s->key.reason == key.reason) { s->pending++; return 0; }
struct drop_key old = s->key; u64 p = s->pending;
u64 seq = __sync_fetch_and_add(&s->seq, 1); s->key = key; s->pending = 1;
if (__sync_fetch_and_add(&s->seq, 1) != seq + 1) return 0;
if (p) { u64 *v = drops.lookup(&old); if (v) *v += p; else drops.update(&old, &p); }"""
# the cache folded into the last-key slot: the slot also keeps the struct net pointer, so a
# repeated drop is 2 reads and no cookie, with no second map lookup (not exact either:
# the pointer can be a freed namespace's, reused)
RUN_NET = NET_PTR + """u32 z = 0; struct net_slot *s = net_last.lookup(&z); if (!s) return 0;
if (s->pending && net && s->net == net && s->key.location == a->location
    && s->key.reason == a->reason) { s->pending++; return 0; }
struct drop_key key = {}; key.location = a->location; key.reason = a->reason;
key.netns = a->rx_sk ? netns_key_of_sock(a->rx_sk) : netns_key_of_net(net);
struct drop_key old = s->key; u64 p = s->pending;
u64 seq = __sync_fetch_and_add(&s->seq, 1); s->key = key; s->pending = 1; s->net = net;
if (__sync_fetch_and_add(&s->seq, 1) != seq + 1) return 0;
if (p) { u64 *v = drops.lookup(&old); if (v) *v += p; else drops.update(&old, &p); }"""
BUDGET_CLOCK = """u32 t = 13; struct ev_win *w = ev_window.lookup(&t); if (!w) return 0;
u64 now = bpf_ktime_get_ns(); if (now - w->start >= 1000000000ULL) { w->start = now;
w->used = 0; } if (w->used >= 100) { u64 *c = ev_suppressed.lookup(&t); if (c) (*c)++;
return 0; } w->used++;"""
BUDGET_TICK = """u32 t = 13; struct ev_win *w = ev_window.lookup(&t); if (!w) return 0;
u64 j = bpf_jiffies64(); if (j != w->jiffy) { u64 now = bpf_ktime_get_ns(); w->jiffy = j;
if (now - w->start >= 1000000000ULL) { w->start = now; w->used = 0; } }
if (w->used >= 100) { u64 *c = ev_suppressed.lookup(&t); if (c) (*c)++; return 0; }
w->used++;"""
VARIANTS = {
    "empty": "",
    "namespace key (3 reads)": NETNS + " if (ns == 1) return 1;",
    "net pointer only (2 reads)": NET_PTR + " if (net == 1) return 1;",
    "key cached by net pointer": CACHE_NET + " if (ns == 1) return 1;",
    "key cached by net + gen": CACHE_NET_GEN + " if (ns == 1) return 1;",
    "key cached by dev (1 read)": CACHE_DEV + " if (ns == 1) return 1;",
    "+ per-CPU hash count": NETNS + HASH,
    "+ last-key slot instead (now)": NETNS + RUN,
    "budget, clock every drop": BUDGET_CLOCK,
    "budget, clock every tick": BUDGET_TICK,
    "hash + budget/clock (older)": NETNS + HASH + BUDGET_CLOCK,
    "hash + budget/tick (before)": NETNS + HASH + BUDGET_TICK,
    "slot + budget/tick (now)": NETNS + RUN + BUDGET_TICK,
    "cache net + gen, slot, budget": CACHE_NET_GEN + RUN + BUDGET_TICK,
    "slot keyed by net ptr, budget": RUN_NET + BUDGET_TICK,
}


# The same bodies as a BTF raw tracepoint (tp_btf: BPF_PROG_TYPE_TRACING, attach type
# BPF_TRACE_RAW_TP; no trampoline, so this kernel takes it where it refuses fentry): the
# arguments are typed (kfree_skb's TP_PROTO: skb, location, reason, rx_sk), and the
# namespace chain is three plain loads the verifier checks against BTF and the JIT guards
# with an exception table (kernel/bpf/verifier.c, BPF_PROBE_MEM), not three helper calls.
# bcc has no tp_btf section: its bytecode (maps already as fds) is loaded here through
# bpf(2) with the tracepoint's BTF id (the typedef btf_trace_kfree_skb).
TP_BTF_ARGS = """struct args a_ = {.skbaddr = ctx[0], .location = ctx[1], .reason = (u32)ctx[2],
.rx_sk = ctx[3]}; struct args *a = &a_;"""
NETNS_DIRECT = """u64 ns = 0, net = 0; if (a->rx_sk) net = *(u64 *)(a->rx_sk + OFF_SOCK_NET); else {
u64 dev = *(u64 *)(a->skbaddr + OFF_SKB_DEV); if (dev) net = *(u64 *)(dev + OFF_DEV_NET);
if (!net) { u64 sk = *(u64 *)(a->skbaddr + OFF_SKB_SK);
if (sk) net = *(u64 *)(sk + OFF_SOCK_NET); } }
if (net) ns = *(u64 *)(net + OFF_NET_COOKIE);"""
TP_BTF_VARIANTS = {
    "tp_btf: empty": "",
    "tp_btf: namespace key (3 loads)": NETNS_DIRECT + " if (ns == 1) return 1;",
    "tp_btf: slot + budget/tick": NETNS_DIRECT + RUN + BUDGET_TICK,
}


class TpBtf:
    """One program of a bcc object loaded as tp_btf on kfree_skb (the agent's loader,
    bpf/tp_btf.py); attach() / detach()."""

    def __init__(self, bpf: Any, btf_id: int) -> None:
        self._bpf = bpf  # keeps the maps open
        self.fd = tp_btf.load(bpf.dump_func(b"fn"), b"fn", btf_id)
        self._link = -1

    def attach(self) -> None:
        self._link = tp_btf.attach(self.fd)

    def detach(self) -> None:
        os.close(self._link)
        self._link = -1


def build(names: list[str]) -> dict[str, Any]:
    """The variants named, compiled and loaded (not attached): bcc objects or TpBtf."""
    from bcc import BPF

    offsets = {**kernel_offsets(Btf.load("/sys/kernel/btf/vmlinux")), "NETNS_BY_COOKIE": 1}
    prelude = "".join(f"#define {k} {v}\n" for k, v in offsets.items()) + header("netns.h")
    btf_id = Btf.load("/sys/kernel/btf/vmlinux").typedef_id("btf_trace_kfree_skb")
    out: dict[str, Any] = {}
    for name in names:
        if name in VARIANTS:
            out[name] = BPF(text=(prelude + MAPS + "int fn(struct args *a) {" + VARIANTS[name]
                                  + " return 0; }").encode())
        elif btf_id is not None:
            out[name] = TpBtf(BPF(text=(prelude + MAPS + "int fn(u64 *ctx) {" + TP_BTF_ARGS
                                        + TP_BTF_VARIANTS[name] + " return 0; }").encode()),
                              btf_id)
    return out


def attach(program: Any) -> None:
    if isinstance(program, TpBtf):
        program.attach()
    else:
        program.attach_tracepoint(tp=b"skb:kfree_skb", fn_name=b"fn")


def detach(program: Any) -> None:
    if isinstance(program, TpBtf):
        program.detach()
    else:
        program.detach_tracepoint(b"skb:kfree_skb")


def bpf_of(program: Any) -> Any:
    return program._bpf if isinstance(program, TpBtf) else program


def run_time(bpf: Any) -> tuple[int, int]:
    fd = bpf.fd if isinstance(bpf, TpBtf) else bpf.funcs[b"fn"].fd
    text = Path(f"/proc/self/fdinfo/{fd}").read_text()
    info = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    return int(info["run_time_ns"]), int(info["run_cnt"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alternate", action="store_true",
                        help="alternate IPv4 and IPv6 datagrams (two drop sites): every drop "
                             "changes the key, the last-key slot's worst case")
    args = parser.parse_args()
    programs = build([*VARIANTS, *TP_BTF_VARIANTS])
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    targets = ([(v4, ("127.0.0.1", 9)), (v6, ("::1", 9))] if args.alternate
               else [(v4, ("127.0.0.1", 9))])
    results: dict[str, list[float]] = {name: [] for name in programs}
    with bpf_stats():
        for _ in range(3):
            for name, bpf in programs.items():
                attach(bpf)
                ns0, runs0 = run_time(bpf)
                for i in range(DROPS):
                    sock, address = targets[i % len(targets)]
                    sock.sendto(b"x", address)
                ns1, runs1 = run_time(bpf)
                detach(bpf)
                results[name].append((ns1 - ns0) / max(1, runs1 - runs0))
    # the same key either way: the slot's namespace after the classic and tp_btf runs
    keys = {name: sorted({v.key.netns for v in bpf_of(programs[name])[b"drop_last"][0]
                          if v.pending})
            for name in ("slot + budget/tick (now)", "tp_btf: slot + budget/tick")
            if name in programs}
    print(f"namespace keys in the slots: {keys}")
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}"
          f"{'  (keys alternating)' if args.alternate else ''}")
    print(f"{'variant on skb:kfree_skb':<30} {'ns/drop':>8}  (rounds)")
    for name, values in results.items():
        print(f"{name:<30} {statistics.median(values):>8.1f}  "
              f"({' '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
