// Namespace of a socket or an skb. OFF_* offsets are rendered from the running kernel's BTF
// by bpf/programs.py; nothing here depends on the (possibly mismatched) headers bcc compiles
// against. Only probes with needs_btf include this.
//
// Two identities: the inode (netns_of_*: event records, named by user space within
// milliseconds) and the key of per-pod maps (netns_key_of_*). Map entries live for many
// cycles, and inodes are reused as soon as a namespace is freed, so with NETNS_BY_COOKIE the
// key is the namespace's id (struct ns_common ns_id, the value ioctl(NS_GET_ID) and
// SO_NETNS_COOKIE return), which the kernel never gives another namespace; user space joins
// it to the live namespace through /proc (netns/resolver.py). Without it (kernels before
// NS_GET_ID), the key is the inode, as the events use.
//
// ONR_TP_BTF (the drop program loaded as tp_btf, bpf/tp_btf.py): the skb and socket come
// from the tracepoint's typed arguments, so each step of the chain is a plain load the
// verifier checks against BTF and the JIT guards with an exception table (BPF_PROBE_MEM,
// kernel/bpf/verifier.c check_ptr_to_btf_access), not a bpf_probe_read_kernel call. Only
// objects whose every netns.h caller has such pointers define it (bpf/compose.py).
#ifdef ONR_TP_BTF
#define NETNS_READ(dst, addr) ((dst) = *(typeof(dst) *)(addr))
#else
#define NETNS_READ(dst, addr) bpf_probe_read_kernel(&(dst), sizeof(dst), (void *)(addr))
#endif

static __always_inline u64 net_of_sock(u64 sk) {
    u64 net = 0;
    if (sk)
        NETNS_READ(net, sk + OFF_SOCK_NET);
    return net;
}

// The namespace an skb belongs to: its device's, else its socket's (0: unknown, node level).
static __always_inline u64 net_of_skb(u64 skb) {
    u64 dev = 0, sk = 0, net = 0;
    if (!skb)
        return 0;
    NETNS_READ(dev, skb + OFF_SKB_DEV);
    if (dev) {
        NETNS_READ(net, dev + OFF_DEV_NET);
        if (net)
            return net;
    }
    NETNS_READ(sk, skb + OFF_SKB_SK);
    return net_of_sock(sk);
}

static __always_inline u32 netns_of_net(u64 net) {
    u32 inum = 0;
    if (net)
        NETNS_READ(inum, net + OFF_NET_INUM);
    return inum;
}

static __always_inline u32 netns_of_sock(u64 sk) { return netns_of_net(net_of_sock(sk)); }
static __always_inline u32 netns_of_skb(u64 skb) { return netns_of_net(net_of_skb(skb)); }

static __always_inline u64 netns_key_of_net(u64 net) {
#ifdef NETNS_BY_COOKIE
    u64 cookie = 0;
    if (net)
        NETNS_READ(cookie, net + OFF_NET_COOKIE);
    return cookie;
#else
    return netns_of_net(net);
#endif
}

static __always_inline u64 netns_key_of_sock(u64 sk) { return netns_key_of_net(net_of_sock(sk)); }
static __always_inline u64 netns_key_of_skb(u64 skb) {
    return netns_key_of_net(net_of_skb(skb));
}
