// tc programs for bench_dns_tchook.py, attached with tcx on the node-side veth of each pod.
// Compiled by bcc as BPF_PROG_TYPE_SCHED_CLS. tcx return codes
// (include/uapi/linux/bpf.h): TCX_NEXT (-1) hands the packet to the next program, or passes
// it when there is none (net/core/dev.c tcx_run / sch_handle_ingress).
#include <uapi/linux/bpf.h>

#define TCX_NEXT -1

BPF_PERCPU_ARRAY(tc_hits, u64, 1);
BPF_ARRAY(seen, u64, 8);  // tc_attribution: what the attribution helpers return here

static __always_inline void tc_hit(void)
{
    u32 k = 0;
    u64 *v = tc_hits.lookup(&k);
    if (v)
        (*v)++;
}

int tc_empty(struct __sk_buff *skb) { return TCX_NEXT; }

// The cgroup_skb port filter of bench_dns_hook.py (cg_ports), from the Ethernet header:
// IPv4 without options, or IPv6 with UDP/TCP as the first next header; either port 53.
int tc_ports(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    u8 *h = data;
    if (data + 14 + 24 > end)
        return TCX_NEXT;
    u16 proto = (h[12] << 8) | h[13];
    u8 *l4;
    if (proto == 0x0800) {
        if ((h[14 + 9] != 17 && h[14 + 9] != 6) || h[14] != 0x45)
            return TCX_NEXT;
        l4 = h + 14 + 20;
    } else if (proto == 0x86DD) {
        if (data + 14 + 44 > end || (h[14 + 6] != 17 && h[14 + 6] != 6))
            return TCX_NEXT;
        l4 = h + 14 + 40;
    } else {
        return TCX_NEXT;
    }
    if (((l4[0] << 8) | l4[1]) == 53 || ((l4[2] << 8) | l4[3]) == 53)
        tc_hit();
    return TCX_NEXT;
}

// What a tc-based probe could attribute a packet with on the node-side veth: the socket
// (skb->sk), its cgroup (bpf_skb_cgroup_id), the device; and, in a program of its own (the
// verifier may refuse the helper on tc), the namespace (bpf_get_netns_cookie). Last values
// seen, by direction (slots 0-3: the veth's ingress, 4-7: its egress).
static __always_inline void record(u32 base, u64 a, u64 b, u64 c)
{
    u64 values[3] = {a, b, c};
    for (u32 i = 0; i < 3; i++) {
        u32 k = base + i;
        seen.update(&k, &values[i]);
    }
}

int tc_attr_in(struct __sk_buff *skb)
{
    record(0, skb->sk ? 1 : 0, bpf_skb_cgroup_id(skb), skb->ifindex);
    return TCX_NEXT;
}

int tc_attr_out(struct __sk_buff *skb)
{
    record(4, skb->sk ? 1 : 0, bpf_skb_cgroup_id(skb), skb->ifindex);
    return TCX_NEXT;
}

int tc_netns_in(struct __sk_buff *skb)
{
    u32 k = 3;
    u64 v = bpf_get_netns_cookie(skb);
    seen.update(&k, &v);
    return TCX_NEXT;
}

int tc_netns_out(struct __sk_buff *skb)
{
    u32 k = 7;
    u64 v = bpf_get_netns_cookie(skb);
    seen.update(&k, &v);
    return TCX_NEXT;
}
