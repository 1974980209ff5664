// Probes at the node's sockets (cgroup_skb on the cgroup v2 root, bpf/socket_hooks.py): the
// IP header read once per packet end, whatever number of probes look at it.
//
// A socket-hook probe writes one handler, `static __always_inline int <handler>(struct
// __sk_buff *skb, const struct skb_pkt *p)`, and `SOCKET_HOOK(<prefix>, <handler>)` after it.
// Loaded alone, that makes its two programs (<prefix>_egress, <prefix>_ingress: parse, then
// the handler). Compiled with other socket-hook probes into one object
// (bpf/compose_hooks.py), SOCKET_HOOK_COMPOSITE is defined and the macro makes nothing: one
// egress and one ingress program parse once and call every probe's handler, so a packet end
// costs one invocation, not one per probe.
//
// Values only (no packet pointers) cross into the handlers: the verifier's range of a packet
// pointer does not survive the compiler recomputing it, values do. skb->data is the IP
// header here (kernel/bpf/cgroup.c __cgroup_bpf_run_filter_skb pushes to it).
#ifndef ONR_SOCKHOOK_H
#define ONR_SOCKHOOK_H

struct skb_pkt {
    u32 saddr[4], daddr[4];  // as loaded (network order); IPv4: word 0 only
    u32 linear;  // bytes readable with direct packet access from the IP header
    u32 l3;  // IP header bytes (IPv4 IHL * 4, IPv6 40: no extension headers followed)
    u32 l4;  // TCP header bytes (data offset * 4) when readable, UDP 8, else 0
    u16 sport, dport;  // host order, when `ports`
    u8 egress, version, proto;
    u8 frag;  // an IPv4 fragment (more fragments, or an offset)
    u8 ports;  // TCP or UDP, an IP header of 20-60 bytes, the ports in the linear data
};

// 0 when the packet is neither IPv4 nor IPv6 or its IP header is not in the linear data.
static __always_inline int skb_pkt_parse(struct __sk_buff *skb, u8 egress, struct skb_pkt *p) {
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    u8 *ip = data;
    __builtin_memset(p, 0, sizeof(*p));
    if (data + 20 > end)
        return 0;
    p->egress = egress;
    p->linear = end - data;
    p->version = ip[0] >> 4;
    if (p->version == 4) {
        p->frag = ((ip[6] & 0x3F) | ip[7]) != 0;
        p->proto = ip[9];
        p->l3 = (ip[0] & 0xF) * 4;
        p->saddr[0] = *(u32 *)(ip + 12);
        p->daddr[0] = *(u32 *)(ip + 16);
    } else if (p->version == 6) {
        if (data + 40 > end)
            return 0;
        p->proto = ip[6];
        p->l3 = 40;
        __builtin_memcpy(p->saddr, ip + 8, 16);
        __builtin_memcpy(p->daddr, ip + 24, 16);
    } else {
        return 0;
    }
    if ((p->proto != 17 && p->proto != 6) || p->l3 < 20 || p->l3 > 60)
        return 1;
    u8 *th = ip + (p->l3 & 0x3F);
    if ((void *)(th + 4) > end)
        return 1;
    p->ports = 1;
    p->sport = (th[0] << 8) | th[1];
    p->dport = (th[2] << 8) | th[3];
    if (p->proto == 17)
        p->l4 = 8;
    else if ((void *)(th + 13) <= end)
        p->l4 = (th[12] >> 4) * 4;
    return 1;
}

#ifdef SOCKET_HOOK_COMPOSITE
#define SOCKET_HOOK(prefix, handler)
// The composite's entries hand the handlers the parsed header from here, not from their
// stack: a value loaded from a map is unknown to the verifier at each load, so what one
// handler's branches learn about a field (the version, the protocol) does not split the
// verification of the next one into a walk per path of the first (dns alone processes
// ~450k instructions on ingress; behind it, peers once per dns path went past the 1M limit).
BPF_PERCPU_ARRAY(skb_pkt_scratch, struct skb_pkt, 1);
#else
#define SOCKET_HOOK(prefix, handler)                                            \
int prefix##_egress(struct __sk_buff *skb) {                                    \
    struct skb_pkt p;                                                           \
    if (skb_pkt_parse(skb, 1, &p))                                              \
        handler(skb, &p);                                                       \
    return 1;                                                                   \
}                                                                               \
int prefix##_ingress(struct __sk_buff *skb) {                                   \
    struct skb_pkt p;                                                           \
    if (skb_pkt_parse(skb, 0, &p))                                              \
        handler(skb, &p);                                                       \
    return 1;                                                                   \
}
#endif
#endif
