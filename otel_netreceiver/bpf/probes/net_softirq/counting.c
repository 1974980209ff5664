// net_softirq: NET_TX (2) and NET_RX (3) softirq scheduling delay (raise -> entry) and
// execution time (entry -> exit), log2 histograms of nanoseconds, per vector.
// Per-packet budget (docs/architecture.md): one softirq run in TIMING_SAMPLE is timed, chosen
// at random (bpf_get_prandom_u32), so the others cost a vector test, an inlined per-CPU array
// access and no clock read. The sampled counts and sums are multiplied by TIMING_SAMPLE in
// user space (bpf/readers.py histogram): unbiased estimates of all runs.
struct vec_args { u64 __pad; u32 vec; };

#define NOT_TIMED 1  // raised, not chosen: later raises before the run must not be chosen
struct slot_key { u32 vec; u32 slot; };
BPF_PERCPU_ARRAY(raised, u64, 4);   // per CPU: raise time per vector (indices 2, 3 used)
BPF_PERCPU_ARRAY(entered, u64, 4);
BPF_HISTOGRAM(sched_delay, struct slot_key, 256);
BPF_HISTOGRAM(exec_time, struct slot_key, 256);
BPF_PERCPU_ARRAY(sched_sum, u64, 4);  // exact sums (ns) of the timed runs
BPF_PERCPU_ARRAY(exec_sum, u64, 4);

static __always_inline int is_net(u32 vec) {
    return vec == ONR_SOFTIRQ_NET_TX || vec == ONR_SOFTIRQ_NET_RX;
}

static __always_inline int chosen(void) {
    return TIMING_SAMPLE <= 1 || bpf_get_prandom_u32() % TIMING_SAMPLE == 0;
}

int on_raise(struct vec_args *args) {
    u32 vec = args->vec;
    if (!is_net(vec)) return 0;
    u64 *t = raised.lookup(&vec);
    if (t && *t == 0)  // the first raise since the last run is the one that may be timed
        *t = chosen() ? bpf_ktime_get_ns() : NOT_TIMED;
    return 0;
}

int on_entry(struct vec_args *args) {
    u32 vec = args->vec;
    if (!is_net(vec)) return 0;
    u64 *t = raised.lookup(&vec);
    u64 now = 0;
    if (t && *t) {
        if (*t != NOT_TIMED) {
            now = bpf_ktime_get_ns();
            u64 delta = now - *t;
            struct slot_key key = {vec, bpf_log2l(delta)};
            sched_delay.increment(key);
            u64 *sum = sched_sum.lookup(&vec);
            if (sum) *sum += delta;
        }
        *t = 0;
    }
    if (!chosen()) return 0;
    u64 *e = entered.lookup(&vec);
    if (e) *e = now ? now : bpf_ktime_get_ns();
    return 0;
}

int on_exit(struct vec_args *args) {
    u32 vec = args->vec;
    if (!is_net(vec)) return 0;
    u64 *e = entered.lookup(&vec);
    if (e && *e) {
        u64 delta = bpf_ktime_get_ns() - *e;
        struct slot_key key = {vec, bpf_log2l(delta)};
        exec_time.increment(key);
        u64 *sum = exec_sum.lookup(&vec);
        if (sum) *sum += delta;
        *e = 0;
    }
    return 0;
}
