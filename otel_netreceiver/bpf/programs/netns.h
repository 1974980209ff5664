// Namespace of a socket or an skb. OFF_* offsets are rendered from the running kernel's BTF
// by bpf/programs.py; nothing here depends on the (possibly mismatched) headers bcc compiles
// against. Only probes with needs_btf include this.

static __always_inline u32 netns_of_net(u64 net) {
    u32 inum = 0;
    if (net)
        bpf_probe_read_kernel(&inum, sizeof(inum), (void *)(net + OFF_NET_INUM));
    return inum;
}

static __always_inline u32 netns_of_sock(u64 sk) {
    u64 net = 0;
    if (!sk)
        return 0;
    bpf_probe_read_kernel(&net, sizeof(net), (void *)(sk + OFF_SOCK_NET));
    return netns_of_net(net);
}

// The namespace an skb belongs to: its device's, else its socket's (0: unknown, node level).
static __always_inline u32 netns_of_skb(u64 skb) {
    u64 dev = 0, sk = 0, net = 0;
    if (!skb)
        return 0;
    bpf_probe_read_kernel(&dev, sizeof(dev), (void *)(skb + OFF_SKB_DEV));
    if (dev) {
        bpf_probe_read_kernel(&net, sizeof(net), (void *)(dev + OFF_DEV_NET));
        if (net)
            return netns_of_net(net);
    }
    bpf_probe_read_kernel(&sk, sizeof(sk), (void *)(skb + OFF_SKB_SK));
    return netns_of_sock(sk);
}
