// Event records for transmits slower than a threshold from net:net_dev_queue to
// net:net_dev_xmit (type NETIF_TXLAT_SLOW, above EV_TXLAT_NS). Keeps its own queue
// timestamps per skb, independent of counting.c, in the same kind of shared array slot
// chosen by a hash of the skb address (no LRU hash update, lookup and delete per packet).
// Per-packet budget (docs/architecture.md): one queued skb in TIMING_SAMPLE is watched,
// chosen at random; a slowdown that lasts TIMING_SAMPLE packets is recorded.
QUEUE_ARGS_STRUCT
XMIT_ARGS_STRUCT
EVENTS_H

#define EV_QUEUE_SLOTS 16384
struct ev_queued { u64 skb; u64 at; };
BPF_ARRAY(ev_queued_at, struct ev_queued, EV_QUEUE_SLOTS);

static __always_inline u32 ev_queue_slot(u64 skb) {
    return (u32)((skb * 0x9E3779B97F4A7C15ULL) >> 50) & (EV_QUEUE_SLOTS - 1);  // Fibonacci
}

int ev_on_queue(struct queue_args *args) {
    if (TIMING_SAMPLE > 1 && bpf_get_prandom_u32() % TIMING_SAMPLE)
        return 0;
    u32 idx = ev_queue_slot(args->skbaddr);
    struct ev_queued *q = ev_queued_at.lookup(&idx);
    if (q) {
        q->at = bpf_ktime_get_ns();
        q->skb = args->skbaddr;
    }
    return 0;
}

int ev_on_xmit(struct xmit_args *args) {
    u64 skb = args->skbaddr;
    u32 idx = ev_queue_slot(skb);
    struct ev_queued *q = ev_queued_at.lookup(&idx);
    if (!q || q->skb != skb) return 0;
    u64 delta = bpf_ktime_get_ns() - q->at;
    q->skb = 0;
    if (delta < EV_TXLAT_NS) return 0;
    struct nr_event *e = ev_reserve(EV_NETIF_TXLAT_SLOW);
    if (!e) return 0;
    u32 loc = args->name;
    bpf_probe_read_kernel_str(e->ifname, sizeof(e->ifname), (void *)args + (loc & 0xFFFF));
    e->value_ns = delta;
    ev_submit(args, e);
    return 0;
}
