// packetloss: skb:kfree_skb counted in the kernel per (drop location, namespace, reason) in one
// per-CPU hash: one map operation per event (two separate maps measured 204 ns/event, see
// BENCHMARKS.md). User space sums it into per-pod drops by reason and node-wide drop sites.
ARGS_STRUCT

struct drop_key { u64 location; u64 netns; u32 reason; u32 pad; };  // netns: netns.h key
BPF_PERCPU_HASH(drops, struct drop_key, u64, 16384);

int on_kfree_skb(struct kfree_skb_args *args) {
    struct drop_key key = {};
    u64 sk = args->rx_sk;
    key.location = args->location;
    key.reason = args->reason;
    key.netns = sk ? netns_key_of_sock(sk) : netns_key_of_skb(args->skbaddr);
    u64 one = 1, *v = drops.lookup(&key);
    if (v) (*v)++;
    else if (drops.update(&key, &one) != 0) count_lost();
    return 0;
}
