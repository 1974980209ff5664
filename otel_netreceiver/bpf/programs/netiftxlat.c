// netiftxlat: time from net:net_dev_queue to net:net_dev_xmit (qdisc + driver) per
// interface, log2 histogram of nanoseconds. The queue time is kept per skb in an LRU map.
QUEUE_ARGS_STRUCT
XMIT_ARGS_STRUCT

struct tx_key { char ifname[16]; u32 slot; };
BPF_TABLE("lru_hash", u64, u64, queued_at, 65536);
BPF_HISTOGRAM(tx_latency, struct tx_key, 4096);
struct if_key { char ifname[16]; };
BPF_HASH(tx_sum, struct if_key, u64, 1024);  // exact sums (ns) per interface

int on_queue(struct queue_args *args) {
    u64 skb = args->skbaddr, now = bpf_ktime_get_ns();
    queued_at.update(&skb, &now);
    return 0;
}

int on_xmit(struct xmit_args *args) {
    u64 skb = args->skbaddr;
    u64 *start = queued_at.lookup(&skb);
    if (!start) return 0;
    struct tx_key key = {};
    u32 loc = args->name;
    bpf_probe_read_kernel_str(key.ifname, sizeof(key.ifname), (void *)args + (loc & 0xFFFF));
    u64 delta = bpf_ktime_get_ns() - *start;
    key.slot = bpf_log2l(delta);
    queued_at.delete(&skb);
    tx_latency.increment(key);
    struct if_key ifk = {};
    __builtin_memcpy(ifk.ifname, key.ifname, sizeof(ifk.ifname));
    u64 zero = 0, *sum = tx_sum.lookup_or_try_init(&ifk, &zero);
    if (sum) __sync_fetch_and_add(sum, delta);
    return 0;
}
