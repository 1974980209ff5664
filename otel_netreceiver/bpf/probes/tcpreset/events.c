// Event records for resets sent and received (types TCP_SEND_RST, TCP_RECEIVE_RST). A separate
// BPF object from counting.c (counters), so events cost nothing when they are off.
SEND_ARGS_STRUCT
RECV_ARGS_STRUCT
EVENTS_H

int ev_on_send_reset(struct send_reset_args *args) {
#if EV_ON_TCP_SEND_RST
    struct nr_event *e = ev_reserve(EV_TCP_SEND_RST);
    if (!e) return 0;
    e->reason = SEND_REASON;
    if (args->skaddr) {
        e->netns = netns_of_sock(args->skaddr);
        e->state = args->state;
    } else {
        e->netns = netns_of_skb(args->skbaddr);
        e->state = ONR_NO_SOCKET_STATE;
    }
    SEND_ADDRS
    ev_submit(args, e);
#endif
    return 0;
}

int ev_on_receive_reset(struct receive_reset_args *args) {
#if EV_ON_TCP_RECEIVE_RST
    struct nr_event *e = ev_reserve(EV_TCP_RECEIVE_RST);
    if (!e) return 0;
    u8 state = 0;
    e->reason = 0xFFFFFFFF;
    e->netns = netns_of_sock(args->skaddr);
    if (args->skaddr)
        bpf_probe_read_kernel(&state, sizeof(state), (void *)(args->skaddr + OFF_SOCK_STATE));
    e->state = state;
    RECV_ADDRS
    ev_submit(args, e);
#endif
    return 0;
}
