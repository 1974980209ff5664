// Per-namespace latency histograms shared by socketlatency and kernellatency: log2 slots of
// nanoseconds per (namespace, direction) plus exact sums, like the other latency probes.

struct lat_key { u32 netns; u32 direction; u32 slot; };
struct dir_key { u32 netns; u32 direction; };
BPF_HASH(latency, struct lat_key, u64, 16384);
BPF_HASH(latency_sum, struct dir_key, u64, 4096);

static __always_inline void observe(u32 netns, u32 direction, u64 delta) {
    struct lat_key key = {netns, direction, bpf_log2l(delta)};
    u64 zero = 0, *n = latency.lookup_or_try_init(&key, &zero);
    if (!n) { count_lost(); return; }
    __sync_fetch_and_add(n, 1);
    struct dir_key dk = {netns, direction};
    u64 *sum = latency_sum.lookup_or_try_init(&dk, &zero);
    if (sum) __sync_fetch_and_add(sum, delta);
    else count_lost();
}
