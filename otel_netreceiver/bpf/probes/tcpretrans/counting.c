// tcpretrans: tcp:tcp_retransmit_skb per (namespace, socket state), and, when
// RETRANS_PEERS > 0 (collectors.ebpf.retrans_peers), per (namespace, remote address, port)
// in a map of at most RETRANS_PEERS entries: endpoints past the cap are counted in `lost`.
ARGS_STRUCT

struct retrans_key { u64 netns; u32 state; u32 pad; };  // netns: netns.h key
BPF_PERCPU_HASH(retrans, struct retrans_key, u64, 16384);

#if RETRANS_PEERS > 0
struct peer_key { u64 netns; u16 family; u16 dport; u8 daddr[16]; u32 pad; };
BPF_PERCPU_HASH(retrans_peers, struct peer_key, u64, RETRANS_PEERS);
#endif

int on_retransmit(struct retransmit_args *args) {
    struct retrans_key key = {};
    key.netns = netns_key_of_sock(args->skaddr);
    key.state = args->state;
    u64 one = 1, *v = retrans.lookup(&key);
    if (v) (*v)++;
    else if (retrans.update(&key, &one) != 0) count_lost();
#if RETRANS_PEERS > 0
    struct peer_key peer = {};
    peer.netns = key.netns;
    peer.family = args->family;
    peer.dport = args->dport;
    if (args->family == ONR_AF_INET)  // the v4 address; the v6 field holds its mapped form
        __builtin_memcpy(peer.daddr, args->daddr, 4);
    else
        __builtin_memcpy(peer.daddr, args->daddr_v6, 16);
    u64 *p = retrans_peers.lookup(&peer);
    if (p) (*p)++;
    else if (retrans_peers.update(&peer, &one) != 0) count_lost();
#endif
    return 0;
}
