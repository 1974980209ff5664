// Event records: one fixed record per event, sent through a perf buffer,
// rate-limited here before anything is copied. Rendered by events/programs.py with:
//   EV_BUDGET       events per type per CPU per second that may leave the kernel
//   EV_TYPES        number of event types (array sizes)
//   EV_STACKS       1: attach a kernel stack id (BPF_STACK_TRACE) to each record
// Suppressed records are counted per CPU and type in ev_suppressed; a failed
// perf_submit (buffer full) in ev_submit_failed. User space exports both.

// struct nr_event: rendered from the field table in events/record.py
EV_RECORD_STRUCT

// start, used: the window; jiffy: the jiffies64 value when the clock was last read
struct ev_win { u64 start; u64 used; u64 jiffy; };

BPF_PERF_OUTPUT(events);
BPF_PERCPU_ARRAY(ev_window, struct ev_win, EV_TYPES);
BPF_PERCPU_ARRAY(ev_suppressed, u64, EV_TYPES);
BPF_PERCPU_ARRAY(ev_submit_failed, u64, EV_TYPES);
BPF_PERCPU_ARRAY(ev_scratch, struct nr_event, 1);  // 128 bytes: too big for a hot stack frame
#if EV_STACKS
BPF_STACK_TRACE(ev_stacks, 1024);
#endif

static __always_inline void ev_bump(void *table_lookup_result) {
    u64 *v = table_lookup_result;
    if (v) (*v)++;
}

// The kernel-side rate limit: a one-second window per CPU and type; no atomics, no locks
// (per-CPU values, and a tracepoint program is not preempted on its CPU). The clock
// (bpf_ktime_get_ns, ~35 ns on a VM: most of a suppressed event's cost, BENCHMARKS.md) is
// read when jiffies64 (a load) moved since the last read on this CPU for this type, so a
// flood reads it once per tick, and the window opens and closes within one tick of the
// second; a record's own time stamp is read when the record is made.
static __always_inline struct nr_event *ev_reserve(u32 type) {
    u32 zero = 0;
    struct ev_win *w = ev_window.lookup(&type);
    if (!w) return 0;
    u64 jiffy = bpf_jiffies64();
    if (jiffy != w->jiffy) {
        u64 now = bpf_ktime_get_ns();
        w->jiffy = jiffy;
        if (now - w->start >= 1000000000ULL) { w->start = now; w->used = 0; }
    }
    if (w->used >= EV_BUDGET) { ev_bump(ev_suppressed.lookup(&type)); return 0; }
    w->used++;
    struct nr_event *e = ev_scratch.lookup(&zero);
    if (!e) return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->ts = bpf_ktime_get_ns();
    e->type = type;
    e->cpu = bpf_get_smp_processor_id();
    e->stack_id = -1;
    return e;
}

// The program's context for perf_submit and get_stackid (ARG_PTR_TO_CTX): a tp_btf entry
// hands its handlers a copy of the tracepoint fields with the context in onr_ctx
// (bpf/compose.py), a classic one the record itself.
#ifdef ONR_TP_BTF
#define EV_CTX(args) ((args)->onr_ctx)
#else
#define EV_CTX(args) (args)
#endif

static __always_inline void ev_submit(void *ctx, struct nr_event *e) {
#if EV_STACKS
    e->stack_id = ev_stacks.get_stackid(ctx, 0);
    if (e->stack_id < 0) e->stack_id -= 1;  // keep -1 for "not asked"
#endif
    u32 type = e->type;
    if (events.perf_submit(ctx, e, sizeof(*e)) != 0)
        ev_bump(ev_submit_failed.lookup(&type));
}

// An IPv4/IPv6 pair in the record's sockaddr layout, from tracepoint fields.
static __always_inline void ev_inet(struct nr_event *e, u16 family, u16 sport, u16 dport,
                                    const u8 *s4, const u8 *d4, const u8 *s6, const u8 *d6) {
    *(u16 *)&e->saddr[0] = family;
    *(u16 *)&e->daddr[0] = family;
    *(u16 *)&e->saddr[2] = bpf_htons(sport);
    *(u16 *)&e->daddr[2] = bpf_htons(dport);
    if (family == ONR_AF_INET) {
        __builtin_memcpy(&e->saddr[4], s4, 4);
        __builtin_memcpy(&e->daddr[4], d4, 4);
    } else {
        __builtin_memcpy(&e->saddr[8], s6, 16);
        __builtin_memcpy(&e->daddr[8], d6, 16);
    }
}

#ifdef OFF_SKC_FAMILY
// Addresses of a socket (include/net/sock_common.h), for tracepoints that carry none.
static __always_inline void ev_from_sock(struct nr_event *e, u64 sk) {
    u16 family = 0, sport = 0, dport = 0;
    if (!sk) return;
    bpf_probe_read_kernel(&family, 2, (void *)(sk + OFF_SKC_FAMILY));
    bpf_probe_read_kernel(&sport, 2, (void *)(sk + OFF_SKC_NUM));    // host order
    bpf_probe_read_kernel(&dport, 2, (void *)(sk + OFF_SKC_DPORT));  // network order
    *(u16 *)&e->saddr[0] = family;
    *(u16 *)&e->daddr[0] = family;
    *(u16 *)&e->saddr[2] = bpf_htons(sport);
    *(u16 *)&e->daddr[2] = dport;
    if (family == ONR_AF_INET) {
        bpf_probe_read_kernel(&e->saddr[4], 4, (void *)(sk + OFF_SKC_RCV_SADDR));
        bpf_probe_read_kernel(&e->daddr[4], 4, (void *)(sk + OFF_SKC_DADDR));
    } else if (family == 10) {
        bpf_probe_read_kernel(&e->saddr[8], 16, (void *)(sk + OFF_SKC_V6_RCV_SADDR));
        bpf_probe_read_kernel(&e->daddr[8], 16, (void *)(sk + OFF_SKC_V6_DADDR));
    }
}
#endif

#ifdef OFF_SKB_HEAD
// Addresses of a dropped skb from its IP and transport headers (include/linux/skbuff.h:
// skb->head + network_header / transport_header; 0xFFFF means the header is not set).
static __always_inline void ev_from_skb(struct nr_event *e, u64 skb, u16 protocol) {
    u64 head = 0;
    u16 nh = 0xFFFF, th = 0xFFFF, ports[2] = {};
    u8 l4 = 0;
    bpf_probe_read_kernel(&head, 8, (void *)(skb + OFF_SKB_HEAD));
    bpf_probe_read_kernel(&nh, 2, (void *)(skb + OFF_SKB_NH));
    bpf_probe_read_kernel(&th, 2, (void *)(skb + OFF_SKB_TH));
    if (!head || nh == 0xFFFF) return;
    if (protocol == 0x0800) {
        bpf_probe_read_kernel(&l4, 1, (void *)(head + nh + 9));
        *(u16 *)&e->saddr[0] = 2;
        *(u16 *)&e->daddr[0] = 2;
        bpf_probe_read_kernel(&e->saddr[4], 4, (void *)(head + nh + 12));
        bpf_probe_read_kernel(&e->daddr[4], 4, (void *)(head + nh + 16));
    } else if (protocol == 0x86DD) {
        bpf_probe_read_kernel(&l4, 1, (void *)(head + nh + 6));
        *(u16 *)&e->saddr[0] = 10;
        *(u16 *)&e->daddr[0] = 10;
        bpf_probe_read_kernel(&e->saddr[8], 16, (void *)(head + nh + 8));
        bpf_probe_read_kernel(&e->daddr[8], 16, (void *)(head + nh + 24));
    } else {
        return;
    }
    e->l4 = l4;
    if ((l4 == 6 || l4 == 17) && th != 0xFFFF && th != nh) {
        bpf_probe_read_kernel(ports, 4, (void *)(head + th));
        *(u16 *)&e->saddr[2] = ports[0];  // already network order
        *(u16 *)&e->daddr[2] = ports[1];
    }
}
#endif
