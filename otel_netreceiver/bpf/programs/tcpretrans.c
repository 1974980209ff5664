// tcpretrans: tcp:tcp_retransmit_skb per (namespace, socket state).
ARGS_STRUCT

struct retrans_key { u32 netns; u32 state; };
BPF_PERCPU_HASH(retrans, struct retrans_key, u64, 16384);

int on_retransmit(struct retransmit_args *args) {
    struct retrans_key key = {};
    key.netns = netns_of_sock(args->skaddr);
    key.state = args->state;
    u64 one = 1, *v = retrans.lookup(&key);
    if (v) (*v)++;
    else if (retrans.update(&key, &one) != 0) count_lost();
    return 0;
}
