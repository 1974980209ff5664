// Event records for transmits slower than a threshold from net:net_dev_queue to
// net:net_dev_xmit (type NETIF_TXLAT_SLOW, above EV_TXLAT_NS). Keeps its own queue
// timestamps per skb, independent of netiftxlat.c.
QUEUE_ARGS_STRUCT
XMIT_ARGS_STRUCT
EVENTS_H

BPF_TABLE("lru_hash", u64, u64, ev_queued_at, 65536);

int ev_on_queue(struct queue_args *args) {
    u64 skb = args->skbaddr, now = bpf_ktime_get_ns();
    ev_queued_at.update(&skb, &now);
    return 0;
}

int ev_on_xmit(struct xmit_args *args) {
    u64 skb = args->skbaddr;
    u64 *start = ev_queued_at.lookup(&skb);
    if (!start) return 0;
    u64 delta = bpf_ktime_get_ns() - *start;
    ev_queued_at.delete(&skb);
    if (delta < EV_TXLAT_NS) return 0;
    struct nr_event *e = ev_reserve(EV_NETIF_TXLAT_SLOW);
    if (!e) return 0;
    u32 loc = args->name;
    bpf_probe_read_kernel_str(e->ifname, sizeof(e->ifname), (void *)args + (loc & 0xFFFF));
    e->value_ns = delta;
    ev_submit(args, e);
    return 0;
}
