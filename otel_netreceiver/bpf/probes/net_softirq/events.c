// Event records for NET_TX/NET_RX softirqs slower than a threshold (type NET_SOFTIRQ_SLOW):
// schedule delay (raise -> entry, state 0) above EV_SOFTIRQ_NS or execution time
// (entry -> exit, state 1) above it. Keeps its own per-CPU timestamps: counting.c may be
// loaded or not, independently.
// Per-packet budget (docs/architecture.md): like counting.c, one run in TIMING_SAMPLE is
// watched, chosen at random; the others read no clock. A slowdown that lasts TIMING_SAMPLE
// runs is recorded; a single slow run is recorded with probability 1 / TIMING_SAMPLE.
struct vec_args { u64 __pad; u32 vec; };
EVENTS_H

#define NOT_TIMED 1  // raised, not chosen: later raises before the run must not be chosen
BPF_PERCPU_ARRAY(ev_raised, u64, 4);
BPF_PERCPU_ARRAY(ev_entered, u64, 4);

static __always_inline int ev_chosen(void) {
    return TIMING_SAMPLE <= 1 || bpf_get_prandom_u32() % TIMING_SAMPLE == 0;
}

static __always_inline void ev_slow(void *ctx, u32 vec, u32 phase, u64 delta) {
    if (delta < EV_SOFTIRQ_NS) return;
    struct nr_event *e = ev_reserve(EV_NET_SOFTIRQ_SLOW);
    if (!e) return;
    e->reason = vec;
    e->state = phase;
    e->value_ns = delta;
    ev_submit(ctx, e);
}

int ev_on_raise(struct vec_args *args) {
    u32 vec = args->vec;
    if (vec != ONR_SOFTIRQ_NET_TX && vec != ONR_SOFTIRQ_NET_RX) return 0;
    u64 *t = ev_raised.lookup(&vec);
    if (t && *t == 0) *t = ev_chosen() ? bpf_ktime_get_ns() : NOT_TIMED;
    return 0;
}

int ev_on_entry(struct vec_args *args) {
    u32 vec = args->vec;
    if (vec != ONR_SOFTIRQ_NET_TX && vec != ONR_SOFTIRQ_NET_RX) return 0;
    u64 now = 0;
    u64 *t = ev_raised.lookup(&vec);
    if (t && *t) {
        u64 start = *t;
        *t = 0;
        if (start != NOT_TIMED) {
            now = bpf_ktime_get_ns();
            ev_slow(args, vec, 0, now - start);
        }
    }
    if (!ev_chosen()) return 0;
    u64 *e = ev_entered.lookup(&vec);
    if (e) *e = now ? now : bpf_ktime_get_ns();
    return 0;
}

int ev_on_exit(struct vec_args *args) {
    u32 vec = args->vec;
    if (vec != ONR_SOFTIRQ_NET_TX && vec != ONR_SOFTIRQ_NET_RX) return 0;
    u64 *e = ev_entered.lookup(&vec);
    if (e && *e) {
        u64 delta = bpf_ktime_get_ns() - *e;
        *e = 0;
        ev_slow(args, vec, 1, delta);
    }
    return 0;
}
