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
// The last peer address each namespace classed on this CPU (a slot per namespace cookie
// modulo PEER_CACHE_SLOTS) and its answer: a flow sends and receives runs of packets to and
// from one peer, so most packets skip the trie (a slot per namespace, not one per CPU: the
// two ends of a flow within the node run on one CPU, each with its own peer). peer_gen[0] is
// the table's generation, which user space bumps after each rewrite of peer_table
// (bpf/probes/peers/spec.py); an entry of an older generation is not used.
struct peer_cache { u32 addr[4]; u32 gen; u8 peer_class; u8 zone; u8 valid; u8 pad; };
BPF_PERCPU_ARRAY(peer_last, struct peer_cache, PEER_CACHE_SLOTS);
BPF_ARRAY(peer_gen, u32, 1);

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

// The peer's class and zone: the per-CPU cache when it holds this address under the table's
// current generation, else the trie (and the cache takes its answer). The generation is read
// before the trie, so an answer from before a rewrite is stored under the old generation.
static __always_inline void peer_class_of(const u32 *addr, struct peer_key *key) {
    u32 zero = 0, slot = key->netns & (PEER_CACHE_SLOTS - 1);
    u32 *gen = peer_gen.lookup(&zero);
    struct peer_cache *c = peer_last.lookup(&slot);
    if (!gen || !c)
        return;
    u32 now = *gen;
    if (c->valid && c->gen == now && c->addr[0] == addr[0] && c->addr[1] == addr[1]
        && c->addr[2] == addr[2] && c->addr[3] == addr[3]) {
        key->peer_class = c->peer_class;
        key->zone = c->zone;
        return;
    }
    struct peer_table_key lk = {.prefixlen = 128};
    __builtin_memcpy(lk.addr, addr, 16);
    struct peer_table_value *v = peer_table.lookup(&lk);
    key->peer_class = v ? v->peer_class : PEER_INTERNET;
    key->zone = v ? v->zone : 0;
    __builtin_memcpy(c->addr, addr, 16);
    c->gen = now;
    c->peer_class = key->peer_class;
    c->zone = key->zone;
    c->valid = 1;
}

// The socket-hook handler (include/sockhook.h parsed the IP header: `p`).
static __always_inline int peer_skb(struct __sk_buff *skb, const struct skb_pkt *p) {
    u8 egress = p->egress, proto = p->proto;
    u32 l3 = p->l3;
    u32 addr[4] = {};
    if (p->version == 4) {  // ::ffff:a.b.c.d (bytes 00 00 ff ff, little end)
        addr[2] = 0xFFFF0000;
        addr[3] = egress ? p->daddr[0] : p->saddr[0];
    } else {
        __builtin_memcpy(addr, egress ? p->daddr : p->saddr, 16);
    }
    struct peer_key key = {.netns = bpf_get_netns_cookie(skb), .egress = egress};
    if (skb->ifindex == LOOPBACK_IFINDEX)
        key.peer_class = PEER_SAME_POD;
    else
        peer_class_of(addr, &key);
    u32 segs = skb->gso_segs, bytes = skb->len;
    if (segs > 1) {  // headers of the segments the aggregate does not carry
        u32 l4 = proto == 17 ? 8 : proto == 6 ? p->l4 : 0;
        bytes += (segs - 1) * (l3 + l4);
    } else {
        segs = 1;
    }
#ifdef PEER_TOP_MAX
    if (key.peer_class != PEER_SAME_POD)
        peer_top_count(&key, (const u8 *)addr, segs, bytes);
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

SOCKET_HOOK(peers, peer_skb)
