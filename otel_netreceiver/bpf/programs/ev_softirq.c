// Event records for NET_TX/NET_RX softirqs slower than a threshold (type NET_SOFTIRQ_SLOW):
// schedule delay (raise -> entry, state 0) above EV_SOFTIRQ_NS or execution time
// (entry -> exit, state 1) above it. Keeps its own per-CPU timestamps: softirq.c may be
// loaded or not, independently.
struct vec_args { u64 __pad; u32 vec; };
EVENTS_H

BPF_PERCPU_ARRAY(ev_raised, u64, 4);
BPF_PERCPU_ARRAY(ev_entered, u64, 4);

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
    if (vec != 2 && vec != 3) return 0;
    u64 *t = ev_raised.lookup(&vec);
    if (t && *t == 0) *t = bpf_ktime_get_ns();
    return 0;
}

int ev_on_entry(struct vec_args *args) {
    u32 vec = args->vec;
    if (vec != 2 && vec != 3) return 0;
    u64 now = bpf_ktime_get_ns();
    u64 *t = ev_raised.lookup(&vec);
    if (t && *t) {
        u64 delta = now - *t;
        *t = 0;
        ev_slow(args, vec, 0, delta);
    }
    u64 *e = ev_entered.lookup(&vec);
    if (e) *e = now;
    return 0;
}

int ev_on_exit(struct vec_args *args) {
    u32 vec = args->vec;
    if (vec != 2 && vec != 3) return 0;
    u64 *e = ev_entered.lookup(&vec);
    if (e && *e) {
        u64 delta = bpf_ktime_get_ns() - *e;
        *e = 0;
        ev_slow(args, vec, 1, delta);
    }
    return 0;
}
