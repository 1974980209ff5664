// bench_dns_skstore.py's programs: the client side of the dns probe's matching, cut to the
// store, once with the node-wide hash (counting.c's `pending`) and once with per-socket
// local storage (BPF_MAP_TYPE_SK_STORAGE). Not the probe: a measurement prototype.
//
// Common to every variant (the part the probe pays whatever the store): the IPv4/UDP port
// filter with direct packet access, the DNS header (bpf_skb_load_bytes), the netns cookie,
// a clock read per client query and answer, one per-CPU latency slot per answer. STORE:
// 0 no store (the latency slot of a fixed delta), 1 the hash (insert at the query,
// lookup + delete at the answer, counting.c's key and value), 2 the socket's slot array
// (SLOTS (id, sent) pairs, found by id), 3 a direct-mapped array of ARRAY_SLOTS slots in
// buckets of WAYS, claimed and released by compare-and-swap (ATOMIC 0: plain stores), with
// its timeout sweep (array_sweep, a BPF_PROG_TYPE_SYSCALL program). FULLSOCK: pass skb->sk
// through bpf_sk_fullsock first (the helper checks sk_fullsock itself:
// net/core/bpf_sk_storage.c bpf_sk_storage_get).
#include <uapi/linux/bpf.h>

#define T_UDP 0
#ifndef TIMEOUT_MS
#define TIMEOUT_MS 5000
#endif
#define C_EVICTED 59
#define C_RACE 60
#define C_LATE 61
#define C_LOST 62
#define C_UNMATCHED 63
BPF_PERCPU_ARRAY(latency, u64, 64);  // log2 slots of the answer's delay (0-58); 59 an expired
// attempt evicted, 60 lost to a race, 61 late (answered after the sweep took it), 62 lost, 63 unmatched

static __always_inline void bump(u32 k) {
    u64 *v = latency.lookup(&k);
    if (v) (*v)++;
}

#if STORE == 1
struct pend_key { u64 netns; u16 port; u16 id; u8 transport; u8 pad[3]; };
struct pend_val { u64 sent; u64 timeout; u8 rclass; u8 qclass; u16 attempts; u8 expired;
                  u8 pad[3]; };
BPF_HASH(pending, struct pend_key, struct pend_val, PENDING_ENTRIES);

static __always_inline void query(struct __sk_buff *skb, u64 netns, u16 port, u16 id) {
    struct pend_key key = {.netns = netns, .port = port, .id = id, .transport = T_UDP};
    struct pend_val v = {.sent = bpf_ktime_get_ns(), .timeout = 5000000000ULL, .attempts = 1};
    if (pending.insert(&key, &v) != 0)
        bump(C_LOST);
}

static __always_inline void answer(struct __sk_buff *skb, u64 netns, u16 port, u16 id) {
    struct pend_key key = {.netns = netns, .port = port, .id = id, .transport = T_UDP};
    u64 now = bpf_ktime_get_ns();
    struct pend_val *e = pending.lookup(&key);
    if (!e) {
        bump(C_UNMATCHED);
        return;
    }
    bump(bpf_log2l(now - e->sent) & 0x3F);
    pending.delete(&key);
}

#elif STORE == 2
struct slot { u64 sent; u16 id; u8 used; u8 rclass; u32 timeout_ms; };
struct sk_pending { struct slot s[SLOTS]; };
BPF_SK_STORAGE(sk_pending, struct sk_pending);

static __always_inline struct bpf_sock *sock_of(struct __sk_buff *skb) {
    struct bpf_sock *sk = skb->sk;
    if (!sk)
        return NULL;
#if FULLSOCK
    sk = bpf_sk_fullsock(sk);
#endif
    return sk;
}

static __always_inline void query(struct __sk_buff *skb, u64 netns, u16 port, u16 id) {
    struct bpf_sock *sk = sock_of(skb);
    if (!sk)
        return;
    struct sk_pending *p = sk_pending.sk_storage_get(sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!p) {
        bump(C_LOST);
        return;
    }
    int free = -1;
#pragma unroll
    for (int i = 0; i < SLOTS; i++) {
        if (p->s[i].used && p->s[i].id == id) {  // a re-sent id: the new attempt's time
            free = i;
            break;
        }
        if (!p->s[i].used && free < 0)
            free = i;
    }
    if (free < 0) {  // every slot outstanding: the probe would count it lost (or evict)
        bump(C_LOST);
        return;
    }
    u64 now = bpf_ktime_get_ns();
#pragma unroll
    for (int i = 0; i < SLOTS; i++)  // constant index for the verifier
        if (i == free) {
            p->s[i].sent = now;
            p->s[i].id = id;
            p->s[i].used = 1;
            p->s[i].timeout_ms = TIMEOUT_MS;
        }
}

static __always_inline void answer(struct __sk_buff *skb, u64 netns, u16 port, u16 id) {
    struct bpf_sock *sk = sock_of(skb);
    if (!sk)
        return;
    u64 now = bpf_ktime_get_ns();
    struct sk_pending *p = sk_pending.sk_storage_get(sk, 0, 0);
    if (!p) {
        bump(C_UNMATCHED);
        return;
    }
#pragma unroll
    for (int i = 0; i < SLOTS; i++)
        if (p->s[i].used && p->s[i].id == id) {
            bump(bpf_log2l(now - p->s[i].sent) & 0x3F);
            p->s[i].used = 0;
            return;
        }
    bump(C_UNMATCHED);
}

#if ITER
// The sweep user space would run each cycle: a bpf_iter over the storage map (target
// "bpf_sk_storage_map", net/core/bpf_sk_storage.c; the value is writable, PTR_TO_BUF) visits
// every socket that has a storage, and takes the slots past their timeout. The claim is a
// compare-and-swap on `sent` (BPF_ATOMIC), so an answer racing on another CPU and the sweep
// take an attempt once between them. The context's layout as the kernel defines it there.
struct bpf_iter_meta;
struct bpf_iter__bpf_sk_storage_map {
    struct bpf_iter_meta *meta; struct bpf_map *map; struct sock *sk; void *value;
};
BPF_ARRAY(sweep, u64, 4);  // [0] storages visited, [1] slots outstanding, [2] timeouts taken

static __always_inline void add(u32 k, u64 n) {
    u64 *v = sweep.lookup(&k);
    if (v) __sync_fetch_and_add(v, n);
}

int bpf_iter__bpf_sk_storage_map(struct bpf_iter__bpf_sk_storage_map *ctx) {
    struct sk_pending *p = ctx->value;
    if (!p)
        return 0;
    u64 now = bpf_ktime_get_ns(), outstanding = 0, taken = 0;
#pragma unroll
    for (int i = 0; i < SLOTS; i++) {
        u64 sent = p->s[i].sent;
        if (!p->s[i].used || !sent)
            continue;
        outstanding++;
        if (now - sent >= (u64)p->s[i].timeout_ms * 1000000
            && __sync_val_compare_and_swap(&p->s[i].sent, sent, 0) == sent) {
            p->s[i].used = 0;
            taken++;
        }
    }
    add(0, 1);
    add(1, outstanding);
    add(2, taken);
    return 0;
}
#endif

#elif STORE == 3
// A direct-mapped array of buckets of WAYS slots (WAYS 2: 64 bytes, one cache line), the
// bucket a multiplicative hash of (netns, port, id): no helper call (the verifier inlines an
// array lookup: kernel/bpf/arraymap.c array_map_gen_lookup), no lock, no freelist. A slot is
// owned through one u64 word `w` changed only by compare-and-swap (BPF_ATOMIC BPF_CMPXCHG on
// the map value; ATOMIC 0: plain loads and stores, to see what the atomics cost):
// [15:0] id, [31:16] client port, [34:32] attempts, [35] expired, [63:36] sent >> 16
// (65.5 us units, wraps after 2^44 ns, 4.9 h). The coarse time in the word makes each
// claim a new value, so a compare-and-swap against a word read earlier cannot succeed on a
// slot released and claimed again meanwhile (ABA); `sent` has the exact time for the answer.
// The netns cookie and transport are compared in the slot's other words (same cache line).
#define W_LO 0xFFFFFFFFULL
#define W_ATTEMPT (1ULL << 32)
#define W_EXPIRED (1ULL << 35)
#define W_SENT_SHIFT 36
#define W_SENT_MASK ((1ULL << 28) - 1)
#define GRACE_MS 30000
struct slot { u64 w; u64 netns; u64 sent; u32 timeout_ms; u8 rclass; u8 qclass; u8 transport;
              u8 pad; };
struct bucket { struct slot s[WAYS]; };
BPF_ARRAY(slots, struct bucket, ARRAY_SLOTS / WAYS);
#if ATOMIC
#define CAS(p, old, new) __sync_val_compare_and_swap(p, old, new)
#else
#define CAS(p, old, new) (*(p) == (old) ? (*(p) = (new), (old)) : *(p))
#endif

static __always_inline u32 bucket_of(u64 netns, u16 port, u16 id) {
    u32 x = (u32)netns ^ (u32)(netns >> 32) ^ ((u32)port << 16 | id);
    return (x * 0x9E3779B1u) >> (32 - BUCKET_BITS);  // Fibonacci hashing: the top bits
}

static __always_inline int same(struct slot *s, u64 w, u64 lo, u64 netns) {
    return w && (w & W_LO) == lo && s->netns == netns && s->transport == T_UDP;
}

static __always_inline void query(struct __sk_buff *skb, u64 netns, u16 port, u16 id) {
    u32 b = bucket_of(netns, port, id);
    struct bucket *bk = slots.lookup(&b);
    if (!bk)
        return;
    u64 now = bpf_ktime_get_ns(), lo = (u64)port << 16 | id;
    u64 fresh = ((now >> 16) & W_SENT_MASK) << W_SENT_SHIFT | W_ATTEMPT | lo;
    int empty = -1, expired = -1;
#pragma unroll
    for (int i = 0; i < WAYS; i++) {
        struct slot *s = &bk->s[i];
        u64 w = s->w;
        if (same(s, w, lo, netns)) {  // a re-sent id: its new attempt (the probe counts
            u64 attempts = (w >> 32) & 7;  // RETRANSMIT, TIMEOUT if this takes it past due)
            attempts += attempts < 7;
            s->sent = now;
            if (CAS(&s->w, w, (fresh & ~(7ULL << 32)) | attempts << 32) != w)
                bump(C_LOST);
            return;
        }
        if (!w && empty < 0)
            empty = i;
        if ((w & W_EXPIRED) && expired < 0)  // waits for a late answer only: evictable
            expired = i;
    }
    int way = empty >= 0 ? empty : expired;
    if (empty < 0 && expired >= 0)
        bump(C_EVICTED);  // its late answer will be unmatched
    if (way < 0) {  // both ways outstanding: the probe would fall back to a small hash
        bump(C_LOST);
        return;
    }
    struct slot *s = &bk->s[way & (WAYS - 1)];
    u64 seen = s->w;
    if ((seen && !(seen & W_EXPIRED)) || CAS(&s->w, seen, fresh) != seen) {
        bump(C_LOST);  // another CPU claimed it between the read and here
        return;
    }
    s->netns = netns;
    s->sent = now;
    s->timeout_ms = TIMEOUT_MS;
    s->transport = T_UDP;
}

static __always_inline void answer(struct __sk_buff *skb, u64 netns, u16 port, u16 id) {
    u32 b = bucket_of(netns, port, id);
    struct bucket *bk = slots.lookup(&b);
    if (!bk)
        return;
    u64 now = bpf_ktime_get_ns(), lo = (u64)port << 16 | id;
#pragma unroll
    for (int i = 0; i < WAYS; i++) {
        struct slot *s = &bk->s[i];
        u64 w = s->w;
        if (!same(s, w, lo, netns))
            continue;
        u64 sent = s->sent, got = CAS(&s->w, w, 0);
        if (got != w) {  // the sweep took it meanwhile (w | W_EXPIRED): a late answer
            if (got != (w | W_EXPIRED) || CAS(&s->w, got, 0) != got) {
                bump(C_RACE);  // re-sent or taken by another answer: not this attempt's
                return;
            }
            w = got;
        }
        bump(bpf_log2l(now - sent) & 0x3F);
        if (w & W_EXPIRED)
            bump(C_LATE);
        return;
    }
    bump(C_UNMATCHED);
}

// The timeout sweep, in the kernel (user space cannot compare-and-swap a map value): a
// BPF_PROG_TYPE_SYSCALL program run by BPF_PROG_TEST_RUN (kernel/bpf/syscall.c
// bpf_prog_test_run_syscall; loaded and run by bench/dns_array_sweep.py), bpf_loop over the
// buckets with array_sweep_one as the callback (its index is the bucket). An outstanding
// slot past its timeout is taken (w | W_EXPIRED) and its timeout counted for its netns
// and class, an expired one past the grace is freed; each with a compare-and-swap
// against the word read, so an answer on another CPU and the sweep take an attempt once.
struct sweep_st { u64 now; u64 outstanding; u64 taken; u64 forgotten; u64 races; };
BPF_ARRAY(sweep_state, struct sweep_st, 1);
// the timeouts taken per (netns, class), as counting.c's count() keeps dns_counts (a
// per-CPU hash, which a sleepable program may update: kernel/bpf/verifier.c
// check_map_prog_compatibility)
struct sweep_key { u64 netns; u8 rclass; u8 pad[7]; };
BPF_PERCPU_HASH(sweep_counts, struct sweep_key, u64, 1024);

static __always_inline void count_timeout(struct slot *s) {
    struct sweep_key key = {.netns = s->netns, .rclass = s->rclass};
    u64 one = 1, *v = sweep_counts.lookup(&key);
    if (v) (*v)++;
    else sweep_counts.update(&key, &one);
}

int array_sweep_one(u64 i) {  // one parameter: bcc rewrites a second as a kprobe argument
    u32 b = i, z = 0;
    struct bucket *bk = slots.lookup(&b);
    struct sweep_st *st = sweep_state.lookup(&z);
    if (!bk || !st)
        return 1;
    u64 now = (st->now >> 16) & W_SENT_MASK;
#pragma unroll
    for (int j = 0; j < WAYS; j++) {
        struct slot *s = &bk->s[j];
        u64 w = s->w;
        if (!w)
            continue;
        u64 age = (now - (w >> W_SENT_SHIFT)) & W_SENT_MASK;
        u64 due = ((u64)s->timeout_ms * 1000000) >> 16;
        if (w & W_EXPIRED) {
            if (age >= due + ((u64)GRACE_MS * 1000000 >> 16)) {
                if (CAS(&s->w, w, 0) == w) st->forgotten++;
                else st->races++;
            }
            continue;
        }
        st->outstanding++;
        if (age < due)
            continue;
        if (CAS(&s->w, w, w | W_EXPIRED) == w) {
            st->taken++;  // the probe: count(s->netns, K_TIMEOUT, ..., s->rclass, ...)
            count_timeout(s);
        } else
            st->races++;  // answered (or re-sent) on another CPU meanwhile
    }
    return 0;
}

int array_sweep(void *ctx) {
    u32 z = 0;
    struct sweep_st *st = sweep_state.lookup(&z);
    if (!st)
        return 1;
    st->now = bpf_ktime_get_ns();
    return bpf_loop(ARRAY_SLOTS / WAYS, array_sweep_one, 0, 0);
}

#else
static __always_inline void query(struct __sk_buff *skb, u64 netns, u16 port, u16 id) {
    if (bpf_ktime_get_ns() == netns + id)  // the clock read the others pay
        bump(C_LOST);
}

static __always_inline void answer(struct __sk_buff *skb, u64 netns, u16 port, u16 id) {
    bump(bpf_log2l(bpf_ktime_get_ns() - netns) & 0x3F);
}
#endif

static __always_inline int dns(struct __sk_buff *skb, u8 egress) {
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    u8 *h = data;
    if (data + 24 > end || h[0] >> 4 != 4 || h[9] != 17 || (h[0] & 0xf) != 5)
        return 1;
    u16 sport = (h[20] << 8) | h[21], dport = (h[22] << 8) | h[23];
    if (sport != 53 && dport != 53)
        return 1;
    u8 d[12];
    if (skb->len < 40 || bpf_skb_load_bytes(skb, 28, d, 12) != 0 || d[4] != 0 || d[5] != 1)
        return 1;
    u64 netns = bpf_get_netns_cookie(skb);
    u16 id = (d[0] << 8) | d[1];
    u8 response = d[2] >> 7;
    if (egress && !response && dport == 53)
        query(skb, netns, sport, id);
    else if (!egress && response && sport == 53)
        answer(skb, netns, dport, id);
    return 1;
}

int store_egress(struct __sk_buff *skb) { return dns(skb, 1); }
int store_ingress(struct __sk_buff *skb) { return dns(skb, 0); }
