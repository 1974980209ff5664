// tcptwrcv: segments that reached a TIME_WAIT socket, per namespace. There is no tracepoint
// for tcp_timewait_state_process (and no kprobes / fentry on this kind of kernel), but
// tcp_v4_rcv / tcp_v6_rcv end the do_time_wait path at discard_it with
// sk_skb_reason_drop(sk, skb, reason) (net/ipv4/tcp_ipv4.c, Linux >= 6.11), so skb:kfree_skb
// carries the timewait sock as rx_sk; its skc_state (struct sock_common, shared by
// inet_timewait_sock) is TCP_TIME_WAIT. SYNs that a listener accepts (TCP_TW_SYN reuse) are
// not freed there and not counted.
ARGS_STRUCT

struct tw_key { u64 netns; };  // netns.h key
BPF_PERCPU_HASH(tw_packets, struct tw_key, u64, 4096);

int on_tw_drop(struct kfree_skb_args *args) {
    u64 sk = (u64)args->rx_sk;
    u8 state = 0;
    if (!sk)
        return 0;
    bpf_probe_read_kernel(&state, sizeof(state), (void *)(sk + OFF_SOCK_STATE));
    if (state != ONR_TCP_TIME_WAIT)  // include/net/tcp_states.h
        return 0;
    struct tw_key key = {netns_key_of_sock(sk)};
    u64 one = 1, *v = tw_packets.lookup(&key);
    if (v) (*v)++;
    else if (tw_packets.update(&key, &one) != 0) count_lost();
    return 0;
}
