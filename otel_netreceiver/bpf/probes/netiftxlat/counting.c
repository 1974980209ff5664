// netiftxlat: time from net:net_dev_queue to net:net_dev_xmit (qdisc + driver) per
// interface, log2 histogram of nanoseconds. The queue time is kept per skb in a shared array
// slot chosen by a hash of the skb's address (two array lookups per packet instead of an LRU
// hash update, lookup and delete: see BENCHMARKS.md). Two skbs in flight in the same slot:
// the later one wins and the earlier is not measured (never mis-measured: the address is
// compared). Counts and sums share one per-CPU hash value, so no atomics.
// Per-packet budget (docs/architecture.md): one queued skb in TIMING_SAMPLE is timed, chosen
// at random; the others cost a random number at queue and an inlined array lookup and compare
// at transmit (no clock read, no string read, no hash). User space multiplies the sampled
// counts and sums by TIMING_SAMPLE (bpf/readers.py histogram).
QUEUE_ARGS_STRUCT
XMIT_ARGS_STRUCT

#define QUEUE_SLOTS 65536
struct queued { u64 skb; u64 at; };
BPF_ARRAY(queued_at, struct queued, QUEUE_SLOTS);
struct tx_key { char ifname[16]; u32 slot; };
struct tx_val { u64 count; u64 sum; };  // sum: exact nanoseconds
BPF_PERCPU_HASH(tx_latency, struct tx_key, struct tx_val, 4096);

static __always_inline u32 queue_slot(u64 skb) {
    return (u32)((skb * 0x9E3779B97F4A7C15ULL) >> 48) & (QUEUE_SLOTS - 1);  // Fibonacci hash
}

int on_queue(struct queue_args *args) {
    if (TIMING_SAMPLE > 1 && bpf_get_prandom_u32() % TIMING_SAMPLE)
        return 0;
    u32 idx = queue_slot(args->skbaddr);
    struct queued *q = queued_at.lookup(&idx);
    if (q) {
        q->at = bpf_ktime_get_ns();
        q->skb = args->skbaddr;
    }
    return 0;
}

int on_xmit(struct xmit_args *args) {
    u64 skb = args->skbaddr;
    u32 idx = queue_slot(skb);
    struct queued *q = queued_at.lookup(&idx);
    if (!q || q->skb != skb)
        return 0;
    struct tx_key key = {};
    u64 delta = bpf_ktime_get_ns() - q->at;
    q->skb = 0;
    u32 loc = args->name;
    bpf_probe_read_kernel_str(key.ifname, sizeof(key.ifname), (void *)args + (loc & 0xFFFF));
    key.slot = bpf_log2l(delta);
    struct tx_val zero = {}, *v = tx_latency.lookup_or_try_init(&key, &zero);
    if (!v) {
        count_lost();
        return 0;
    }
    v->count++;
    v->sum += delta;
    return 0;
}
