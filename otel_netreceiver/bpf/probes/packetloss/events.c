// Event records for dropped packets (type PACKETLOSS). A separate BPF object from
// counting.c (counters): when events are off this program is not loaded at all, and when
// on, a flood costs one per-CPU array lookup per drop past the budget.
ARGS_STRUCT
EVENTS_H

int ev_on_kfree_skb(struct kfree_skb_args *args) {
    struct nr_event *e = ev_reserve(EV_PACKETLOSS);
    if (!e) return 0;
    u64 sk = args->rx_sk;
    e->location = args->location;
    e->reason = args->reason;
    e->protocol = args->protocol;
    e->netns = sk ? netns_of_sock(sk) : netns_of_skb(args->skbaddr);
    ev_from_skb(e, args->skbaddr, args->protocol);
    ev_submit(EV_CTX(args), e);
    return 0;
}
