// peers: bytes and packets each pod sends and receives, by the peer's class and zone.
//
// Hook: BPF_PROG_TYPE_CGROUP_SKB on the cgroup v2 root (inet egress and ingress, one
// bpf_link each), the dns probe's hook: the kernel runs it once at the sending socket
// (net/ipv4/ip_output.c ip_finish_output, net/ipv6/ip6_output.c) and once at the receiving
// one (net/core/filter.c sk_filter_trim_cap), never for a packet the node only forwards, so
// a pod's traffic is counted once per direction in its own namespace. skb->data points at
// the IP header (kernel/bpf/cgroup.c __cgroup_bpf_run_filter_skb pushes to it), read with
// direct packet access.
//
// The peer (destination on egress, source on ingress) is classed by one lookup in
// `peer_table`, an LPM trie user space fills from the peer table (peers/lpm.py); no entry
// is the internet. A packet on the loopback device is same_pod (the pod talking to itself:
// a namespace's loopback is always ifindex 1, include/net/flow.h LOOPBACK_IFINDEX).
//
// Bytes: the IP packet (IP total length). A GSO/GRO aggregate (TSO on send, GRO on receive)
// is one skb holding gso_segs packets with one set of headers: it counts gso_segs packets
// and its length plus the IP and TCP/UDP headers of the segments not carried, so the bytes
// are those of the packets on the wire.
#ifndef NETNS_BY_COOKIE
#error "the peers probe keys its counts by namespace cookie (bpf_get_netns_cookie): this kernel gives user space no namespace cookie (ioctl NS_GET_ID, Linux 6.18)"
#endif
PEER_TABLE

#define LOOPBACK_IFINDEX 1
#define PEER_INTERNET 0
#define PEER_SAME_POD 1

struct peer_key { u64 netns; u8 peer_class; u8 zone; u8 egress; u8 pad[5]; };
struct peer_val { u64 packets; u64 bytes; };
BPF_PERCPU_HASH(peer_counts, struct peer_key, struct peer_val, PEER_COUNTS_MAX);

// Per-peer counts for the top-peer log records (peers/records.py), only with
// collectors.ebpf.peers_top > 0: bytes and packets by (namespace, peer address, direction),
// the peer's class and zone carried in the key (they follow from the address). An LRU per-CPU
// hash: bounded, the least recently used peer evicted when full, no atomics. User space
// takes it with BPF_MAP_LOOKUP_AND_DELETE_BATCH once per interval (copy and delete under the
// bucket lock), so a packet after the take starts a new row for the next interval.
#ifdef PEER_TOP_MAX
struct peer_top_key { u64 netns; u8 addr[16]; u8 egress; u8 peer_class; u8 zone; u8 pad[5]; };
BPF_TABLE("lru_percpu_hash", struct peer_top_key, struct peer_val, peer_top, PEER_TOP_MAX);

static __always_inline void peer_top_count(struct peer_key *pk, const u8 *addr, u32 segs,
                                           u32 bytes) {
    struct peer_top_key k = {.netns = pk->netns, .egress = pk->egress,
                             .peer_class = pk->peer_class, .zone = pk->zone};
    __builtin_memcpy(k.addr, addr, 16);
    struct peer_val *v = peer_top.lookup(&k);
    if (v) {
        v->packets += segs;
        v->bytes += bytes;
        return;
    }
    struct peer_val init = {.packets = segs, .bytes = bytes};
    peer_top.update(&k, &init);  // LRU: makes room by evicting, never refuses for space
}
#endif

static __always_inline int peer_skb(struct __sk_buff *skb, u8 egress) {
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    u8 *ip = data, proto;
    u32 l3;
    struct peer_table_key lk = {.prefixlen = 128};
    if (data + 20 > end)
        return 1;
    if (ip[0] >> 4 == 4) {
        *(u32 *)(lk.addr + 8) = 0xFFFF0000;  // ::ffff:a.b.c.d (bytes 00 00 ff ff, little end)
        *(u32 *)(lk.addr + 12) = egress ? *(u32 *)(ip + 16) : *(u32 *)(ip + 12);
        l3 = (ip[0] & 0xF) * 4;
        proto = ip[9];
    } else if (ip[0] >> 4 == 6) {
        if (data + 40 > end)
            return 1;
        if (egress)
            __builtin_memcpy(lk.addr, ip + 24, 16);
        else
            __builtin_memcpy(lk.addr, ip + 8, 16);
        l3 = 40;
        proto = ip[6];
    } else {
        return 1;
    }
    struct peer_key key = {.netns = bpf_get_netns_cookie(skb), .egress = egress};
    if (skb->ifindex == LOOPBACK_IFINDEX) {
        key.peer_class = PEER_SAME_POD;
    } else {
        struct peer_table_value *c = peer_table.lookup(&lk);
        if (c) {
            key.peer_class = c->peer_class;
            key.zone = c->zone;
        }
    }
    u32 segs = skb->gso_segs, bytes = skb->len;
    if (segs > 1) {  // headers of the segments the aggregate does not carry
        u32 l4 = proto == 17 ? 8 : 0;
        u8 *th = ip + (l3 & 0x3F);
        if (proto == 6 && (void *)(th + 13) <= end)
            l4 = (th[12] >> 4) * 4;
        bytes += (segs - 1) * (l3 + l4);
    } else {
        segs = 1;
    }
#ifdef PEER_TOP_MAX
    if (key.peer_class != PEER_SAME_POD)
        peer_top_count(&key, lk.addr, segs, bytes);
#endif
    struct peer_val *v = peer_counts.lookup(&key);
    if (v) {
        v->packets += segs;
        v->bytes += bytes;
    } else {
        struct peer_val init = {.packets = segs, .bytes = bytes};
        if (peer_counts.update(&key, &init) != 0)
            count_lost();
    }
    return 1;
}

int peers_egress(struct __sk_buff *skb) { return peer_skb(skb, 1); }
int peers_ingress(struct __sk_buff *skb) { return peer_skb(skb, 0); }
