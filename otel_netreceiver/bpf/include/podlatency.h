// Per-namespace latency histograms shared by socketlatency and kernellatency: log2 slots of
// nanoseconds per (namespace, direction), each with its exact sum, in one per-CPU hash (one
// map operation and no atomics per observation).

struct lat_key { u64 netns; u32 direction; u32 slot; };  // netns: netns.h key
struct lat_val { u64 count; u64 sum; };
BPF_PERCPU_HASH(latency, struct lat_key, struct lat_val, 16384);

static __always_inline void observe(u64 netns, u32 direction, u64 delta) {
    struct lat_key key = {netns, direction, bpf_log2l(delta)};
    struct lat_val zero = {}, *v = latency.lookup_or_try_init(&key, &zero);
    if (!v) {
        count_lost();
        return;
    }
    v->count++;
    v->sum += delta;
}
