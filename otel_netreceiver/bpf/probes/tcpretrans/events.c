// Event records for retransmitted segments (type TCP_RETRANS, off by default).
ARGS_STRUCT
EVENTS_H

int ev_on_retransmit(struct retransmit_args *args) {
    struct nr_event *e = ev_reserve(EV_TCP_RETRANS);
    if (!e) return 0;
    e->netns = netns_of_sock(args->skaddr);
    e->state = args->state;
    ev_inet(e, args->family, args->sport, args->dport, args->saddr, args->daddr,
            args->saddr_v6, args->daddr_v6);
    ev_submit(args, e);
    return 0;
}
