// bench_dns_tools.py's floor on the dns probe's own hook: bpftrace's `@ = count();` as
// cgroup_skb programs (egress and ingress on the cgroup v2 root). bpftrace cannot attach
// cgroup_skb, so this is its body compiled by bcc. What bpftrace 0.17 loads for
// `tracepoint:net:net_dev_queue { @ = count(); }` (bpftool prog dump xlated, map show):
// the map `AT_` is a BPF_MAP_TYPE_PERCPU_ARRAY, key 4 bytes (0, from a zeroed stack slot),
// value 8 bytes, one entry; the body looks the entry up (the verifier inlines the per-CPU
// array lookup: kernel/bpf/arraymap.c percpu_array_map_gen_lookup), takes its value + 1 (1
// if the lookup found nothing) and writes it back with bpf_map_update_elem (a helper call,
// not an increment in place), flags 0. Both programs share the one map, as bpftrace's
// probes share `@`. Not the probe: a measurement floor.
#include <uapi/linux/bpf.h>

BPF_PERCPU_ARRAY(at_, u64, 1);

static __always_inline void bpftrace_count(void) {
    u32 key = 0;
    u64 *v = at_.lookup(&key);
    u64 n = v ? *v + 1 : 1;
    at_.update(&key, &n);
}

int count_egress(struct __sk_buff *skb) {
    bpftrace_count();
    return 1;
}

int count_ingress(struct __sk_buff *skb) {
    bpftrace_count();
    return 1;
}
