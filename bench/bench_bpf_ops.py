"""What one BPF operation costs the workload, per program invocation on a per-packet tracepoint.

The per-packet budget (docs/architecture.md) is set in these units. One program at a time is
attached to net:net_dev_queue and net:net_dev_xmit (a UDP datagram to a closed port on lo is
two transmits: the datagram and its ICMP error, so four invocations), and the workload
thread's CPU time per datagram is compared with no program attached, in alternating rounds
(medians of three). Each body returns 0 (a classic tracepoint program returning non-zero
also costs a perf sample). "empty" is the invocation itself; the others add one operation.
The raw tracepoint rows attach the same empty body as BPF_PROG_TYPE_RAW_TRACEPOINT.

    sudo flock /tmp/onr-bench.lock .venv/bin/python bench/bench_bpf_ops.py
"""

from __future__ import annotations

import statistics
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_workload import udp_flood, us_per_op

HEADER = """struct slot { u64 skb; u64 at; };
BPF_PERCPU_ARRAY(pca, u64, 1);
BPF_ARRAY(slots, struct slot, 65536);
BPF_HISTOGRAM(hist, u32, 64);
BPF_PERCPU_HASH(pch, u32, u64, 64);
BPF_TABLE("lru_hash", u64, u64, lru, 65536);
"""
SKB = "u64 skb = *(u64 *)((char *)ctx + 8);"  # skbaddr, the first field after the header
BODIES = {
    "empty": "return 0;",
    "bpf_get_prandom_u32": "if (bpf_get_prandom_u32() == 1) return 1; return 0;",
    "bpf_ktime_get_ns": "if (bpf_ktime_get_ns() == 1) return 1; return 0;",
    "per-CPU array ++": "u32 k = 0; u64 *v = pca.lookup(&k); if (v) (*v)++; return 0;",
    "array slot by skb hash, write": SKB + " u32 k = (u32)((skb * 0x9E3779B97F4A7C15ULL) >> 48);"
    " struct slot *v = slots.lookup(&k); if (v) { v->skb = skb; v->at = k; } return 0;",
    "hash atomic increment": "u32 k = bpf_get_smp_processor_id() & 7; hist.increment(k);"
    " return 0;",
    "per-CPU hash lookup_or_try_init": "u32 k = bpf_get_smp_processor_id() & 7; u64 z = 0;"
    " u64 *v = pch.lookup_or_try_init(&k, &z); if (v) (*v)++; return 0;",
    "LRU hash update + delete": SKB + " u64 n = 1; lru.update(&skb, &n); lru.delete(&skb);"
    " return 0;",
    "bpf_probe_read_kernel_str 16": "char b[16]; bpf_probe_read_kernel_str(b, 16,"
    " (void *)ctx + 8); if (b[0] == 1) return 1; return 0;",
}
TRACEPOINTS = ("net_dev_queue", "net_dev_xmit")
RUNS_PER_DATAGRAM = 4
DATAGRAMS = 100_000


def main() -> None:
    from bcc import BPF

    names = {label: f"f{i}" for i, label in enumerate(BODIES)}
    text = HEADER + "".join(f"int {names[label]}(void *ctx) {{ {body} }}\n"
                            for label, body in BODIES.items())
    bpf = BPF(text=text.encode() + b"int raw_empty(void *ctx) { return 0; }\n")
    for name in names.values():
        bpf.load_func(name.encode(), BPF.TRACEPOINT)
    bpf.load_func(b"raw_empty", BPF.RAW_TRACEPOINT)

    def measure(label: str) -> float:
        for tp in TRACEPOINTS:
            if label == "raw tracepoint, empty":
                bpf.attach_raw_tracepoint(tp=tp.encode(), fn_name=b"raw_empty")
            elif label:
                bpf.attach_tracepoint(tp=f"net:{tp}".encode(), fn_name=names[label].encode())
        try:
            return us_per_op(udp_flood, DATAGRAMS)
        finally:
            for tp in TRACEPOINTS:
                if label == "raw tracepoint, empty":
                    bpf.detach_raw_tracepoint(tp=tp.encode())
                elif label:
                    bpf.detach_tracepoint(f"net:{tp}".encode())

    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    rows: dict[str, list[float]] = {label: [] for label in ("", *BODIES,
                                                            "raw tracepoint, empty")}
    for _ in range(3):
        for label in rows:
            rows[label].append(measure(label))
    base = statistics.median(rows.pop(""))
    empty = statistics.median(rows["empty"])
    print(f"no program: {base:.3f} us per datagram ({RUNS_PER_DATAGRAM} invocations each)")
    print(f"{'program body':<34} {'us/datagram':>11} {'ns/invocation':>13} {'over empty':>10}")
    for label, values in rows.items():
        median = statistics.median(values)
        per_run = (median - base) * 1e3 / RUNS_PER_DATAGRAM
        over = (median - empty) * 1e3 / RUNS_PER_DATAGRAM
        print(f"{label:<34} {median:>11.3f} {per_run:>13.1f} {over:>+10.1f}")
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
