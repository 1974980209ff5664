// tcpreset: resets sent (tcp:tcp_send_reset) and received (tcp:tcp_receive_reset), per
// (namespace, direction, socket state, reason). state 255 = no socket (ACK's TCPRESET_NOSOCK).
SEND_ARGS_STRUCT
RECV_ARGS_STRUCT

struct reset_key { u64 netns; u16 direction; u16 state; u32 reason; };  // netns: netns.h key
BPF_PERCPU_HASH(resets, struct reset_key, u64, 16384);

static __always_inline void bump(struct reset_key *key) {
    u64 one = 1, *v = resets.lookup(key);
    if (v) { (*v)++; return; }
    if (resets.update(key, &one) != 0) count_lost();
}

int on_send_reset(struct send_reset_args *args) {
    struct reset_key key = {};
    key.direction = 0;
    key.reason = SEND_REASON;
    if (args->skaddr) {
        key.netns = netns_key_of_sock(args->skaddr);
        key.state = args->state;
    } else {
        key.netns = netns_key_of_skb(args->skbaddr);
        key.state = ONR_NO_SOCKET_STATE;
    }
    bump(&key);
    return 0;
}

int on_receive_reset(struct receive_reset_args *args) {
    struct reset_key key = {};
    u8 state = 0;
    key.direction = 1;
    key.reason = 0xFFFFFFFF;
    key.netns = netns_key_of_sock(args->skaddr);
    if (args->skaddr)
        bpf_probe_read_kernel(&state, sizeof(state), (void *)(args->skaddr + OFF_SOCK_STATE));
    key.state = state;
    bump(&key);
    return 0;
}
