// Event records for DNS failures with the query name: DNS_TIMEOUT, DNS_LATE_ANSWER,
// DNS_SERVFAIL (SERVFAIL or REFUSED), DNS_NXDOMAIN_BURST. A separate text from counting.c
// (events cost nothing when off): an object of its own with cgroup_skb programs on the
// client side only, or, when the counting probe is on too, handlers compiled into the
// counting object (HOSTED_EVENTS_DNS, events/hosting.py: counting.c's programs call
// dnsev_skb, dnsev_tcp_more and dnsev_gone, so a packet end or a drop is one invocation,
// and the sk_buff of a drop is read once). Its own table of
// outstanding queries keeps the raw question name (wire labels, at most 255 bytes) so a
// query that gets no answer can still be named.
//
// A record is struct nr_event (128 bytes) followed by struct dnsev_tail: the namespace
// cookie, query/answer times, the timeout applied, the raw name (decoded in user space,
// bpf/probes/dns/events.py); it is submitted with the name's length rounded up to 8, so a
// typical record is 128 + 48 + 32..64 bytes. The per-type budget of include/events.h
// applies before anything is copied.
//
// Timeouts: an outstanding attempt's entry in ev_pending is taken out by whoever sees it
// expire first: user space (events.py, every second: lookup-and-delete, DNS_TIMEOUT, put
// back marked `expired` for a late answer), or this program when the client re-sends the
// same id (DNS_TIMEOUT) or an answer comes after the timeout (DNS_TIMEOUT and
// DNS_LATE_ANSWER). A late answer to a socket that is gone is seen at skb:kfree_skb
// NO_SOCKET (DNS_LATE_ANSWER, reason no_socket). The table is counting.c's `pending` in
// shape and handling, so the records are as many as its counts: outstanding and expired
// attempts in one plain hash (an `expired` flag), an entry counting its attempts (each
// attempt's timeout one DNS_TIMEOUT, each attempt's late answer one DNS_LATE_ANSWER), every
// message of a pipelined TCP segment parsed; user space's sweep is the counting reader's
// (bpf/probes/dns/sweep.py).
// NXDOMAIN bursts are counted here, per namespace, in a window of NX_WINDOW_NS: one record
// when the count reaches NX_BURST (a storm would otherwise spend the per-type budget on
// single answers and be suppressed exactly when it matters).
#ifndef OFF_NET_COOKIE
#error "the dns event program keys queries by namespace cookie (bpf_get_netns_cookie): this kernel's struct net has no ns_common.ns_id (Linux 6.18)"
#endif
KFREE_ARGS_STRUCT
EVENTS_H

#define DNSEV_NAME 256
#define DNSEV_LATE_AFTER 0  // counting.c's LATE_AFTER_TIMEOUT, LATE_NO_SOCKET
#define DNSEV_LATE_GONE 1
#define NO_RCODE 0xFF

// a query's identity and what a record needs: addresses, type, raw name
struct dq_key { u64 netns; u16 port; u16 id; u8 transport; u8 pad[3]; };
struct dq_val {
    u64 sent; u64 timeout;
    u8 client[16]; u8 server[16];
    u16 family; u16 client_port; u16 server_port; u16 qtype;
    u8 transport; u8 name_len; u16 attempts; u8 expired; u8 pad[3];
    u8 name[DNSEV_NAME];
};
struct dnsev_tail {
    u64 cookie; u64 sent; u64 answered; u64 timeout;
    u32 count; u16 qtype; u8 rcode; u8 name_len;
    u8 transport; u8 pad[7];
    u8 name[DNSEV_NAME];
};
struct dnsev { struct nr_event h; struct dnsev_tail t; };
struct nx_win { u64 start; u32 count; u32 reported; };

// `expired`: user space reported the last attempt's timeout (or an earlier attempt was
// answered): the entry waits only for late answers. Outstanding and expired attempts in one
// plain (preallocated) hash, as counting.c's `pending` and for its reasons: a query touches
// one bucket, and an LRU insert takes the common LRU's lock and list
// (kernel/bpf/bpf_lru_list.c; BENCHMARKS.md, "The dns probe: the event programs' tables").
// User space takes every expired and stale entry out each second (events.py), so a full
// table means a burst of outstanding queries: the insert fails and that query gets no
// record, as counting.c counts it lost.
BPF_HASH(ev_pending, struct dq_key, struct dq_val, EV_DNS_PENDING * 2);
BPF_HASH(ev_timeouts, u64, u64, 4096);  // namespace cookie → resolver timeout (user space)
BPF_TABLE("lru_hash", u64, struct nx_win, ev_nx, 4096);
BPF_PERCPU_ARRAY(dnsev_scratch, struct dnsev, 1);
BPF_PERCPU_ARRAY(dq_scratch, struct dq_val, 1);
BPF_PERCPU_ARRAY(dq_copy, struct dq_val, 1);  // an entry a record is made of (dnsev_answer)

static __always_inline void dnsev_addr(u8 *out, u16 family, u16 port, const u8 *a) {
    *(u16 *)&out[0] = family;
    *(u16 *)&out[2] = bpf_htons(port);
    if (family == ONR_AF_INET)
        __builtin_memcpy(&out[4], a, 4);
    else
        __builtin_memcpy(&out[8], a, 16);
}

// One record of `type` about query `q` (budget first: nothing is copied past it).
static __always_inline void dnsev_emit(void *ctx, u32 type, u64 netns, struct dq_val *q,
                                       u64 sent, u64 answered, u8 rcode, u32 reason,
                                       u32 count) {
    struct nr_event *e = ev_reserve(type);
    u32 zero = 0;
    struct dnsev *d = dnsev_scratch.lookup(&zero);
    if (!e || !d)
        return;
    __builtin_memcpy(&d->h, e, sizeof(*e));
    d->h.reason = reason;
    d->h.protocol = q->family == ONR_AF_INET ? 0x0800 : 0x86DD;
    d->h.l4 = q->transport ? 6 : 17;
    d->h.value_ns = sent ? (answered ? answered : d->h.ts) - sent : 0;
    dnsev_addr(d->h.saddr, q->family, q->client_port, q->client);
    dnsev_addr(d->h.daddr, q->family, q->server_port, q->server);
    d->t.cookie = netns;
    d->t.sent = sent;
    d->t.answered = answered;
    d->t.timeout = q->timeout;
    d->t.count = count;
    d->t.qtype = q->qtype;
    d->t.rcode = rcode;
    d->t.transport = q->transport;
    u32 len = q->name_len;
    d->t.name_len = len;
    __builtin_memcpy(d->t.name, q->name, DNSEV_NAME);
    u32 size = (sizeof(struct nr_event) + offsetof(struct dnsev_tail, name) + len + 7) & 0x1F8;
    if (size > sizeof(*d))
        size = sizeof(*d);
    if (size < sizeof(struct nr_event))
        size = sizeof(struct nr_event);
    if (events.perf_submit(ctx, d, size) != 0)
        ev_bump(ev_submit_failed.lookup(&type));
}

// The offset of the root label ending the name in q->name's first n bytes, or -1 when it
// is not a plain name within them (a pointer, a label past the end: no record is made).
static __always_inline int dnsev_walk(struct dq_val *q, u32 n) {
    u32 pos = 0;
    for (int i = 0; i < 128; i++) {
        if (pos >= n)
            return -1;
        u8 len = q->name[pos & 0xFF];
        if (len == 0)
            return pos < 255 ? (int)pos : -1;
        if (len & 0xC0)
            return -1;
        pos += len + 1;
    }
    return -1;
}

// The question's wire name into q->name, its length and type; 0, or -1 when malformed
// (counting.c counts it as unparsed; no record is made of it).
static __always_inline int dnsev_question(struct __sk_buff *skb, u32 off, struct dq_val *q) {
    u32 left = skb->len > off ? skb->len - off : 0;
    u32 n = left > 255 ? 255 : left;
    if (n < 5 || bpf_skb_load_bytes(skb, off, q->name, n & 0xFF) != 0)
        return -1;
    int pos = dnsev_walk(q, n);
    u8 qt[2];
    if (pos < 0 || bpf_skb_load_bytes(skb, off + pos + 1, qt, 2) != 0)
        return -1;
    q->name_len = pos + 1;
    q->qtype = (qt[0] << 8) | qt[1];
    return 0;
}

static __always_inline u64 dnsev_timeout(u64 netns) {
    u64 *t = ev_timeouts.lookup(&netns);
    return t ? *t : DEFAULT_TIMEOUT_NS;
}

// A query: one insert (BPF_NOEXIST), no lookup before it, as counting.c's client_query. It
// fails when the key has an entry: the client re-sent the id (glibc: the same id from the
// same port after its timeout), while it was outstanding or after user space reported its
// timeout (then its earlier attempts may still be answered: `attempts` counts them).
static __always_inline void dnsev_query(void *ctx, u64 netns, struct dq_key *key,
                                        struct dq_val *q, u64 now) {
    q->sent = now;
    q->timeout = dnsev_timeout(netns);
    q->attempts = 1;
    q->expired = 0;
    if (ev_pending.insert(key, q) == 0)
        return;
    struct dq_val *e = ev_pending.lookup(key);
    if (!e)  // the table is full (counting.c counts it lost)
        return;
    if (e->expired) {  // re-sent after its timeout was reported: this attempt's entry
        q->attempts += e->attempts;
        ev_pending.update(key, q);  // one atomic replace (the sweep may read it meanwhile)
        return;
    }
    if (now - e->sent >= e->timeout)  // re-sent while outstanding: its timeout is ours
        dnsev_emit(ctx, EV_DNS_TIMEOUT, netns, e, e->sent, 0, NO_RCODE, 0, 0);
    e->sent = now;
    e->attempts++;
}

static __always_inline void dnsev_nxdomain(void *ctx, u64 netns, struct dq_val *q, u64 now) {
    struct nx_win zero = {}, *w = ev_nx.lookup_or_try_init(&netns, &zero);
    if (!w)
        return;
    if (now - w->start >= NX_WINDOW_NS) {
        w->start = now;
        w->count = 0;
        w->reported = 0;
    }
    w->count++;
    if (w->count >= NX_BURST && !w->reported) {
        w->reported = 1;
        dnsev_emit(ctx, EV_DNS_NXDOMAIN_BURST, netns, q, 0, now, 3, 3, w->count);
    }
}

// An answer for the client: late (with the timeout it missed), SERVFAIL/REFUSED, NXDOMAIN.
// As counting.c's client_response_at, so records and counts agree: the attempt's timeout
// is reported here only when this program takes the outstanding entry out (delete
// succeeds; user space's sweep takes it atomically otherwise). While more attempts of the id
// are unanswered, the entry stays, expired and one attempt fewer (no sweep reports another
// timeout for it), where the answer to another attempt still finds it. The entry is copied
// (320 bytes, to a per-CPU slot: a deleted element of a preallocated hash is reused at once)
// only when a record is made of it or it is put back: an answer in time to a single
// attempt, the common case, reads four fields and deletes.
static __always_inline void dnsev_answer(void *ctx, u64 netns, struct dq_key *key,
                                         struct dq_val *q, u8 rcode, u8 no_socket, u8 named,
                                         u64 now) {
    struct dq_val *e = ev_pending.lookup(key);
    u32 late = no_socket ? DNSEV_LATE_GONE : DNSEV_LATE_AFTER, zero = 0;
    // the answer's own records need its name in `q` (dnsev_message read it when `named`)
    u8 servfail = named && (rcode == 2 || rcode == 5), nxdomain = named && rcode == 3;
    if (!e) {
        if (servfail)
            q->timeout = dnsev_timeout(netns);
    } else {
        u64 sent = e->sent, timeout = e->timeout;
        u16 attempts = e->attempts;
        u8 was_expired = e->expired, expired = now - sent >= timeout;
        struct dq_val *c = dq_copy.lookup(&zero);
        if (!c)
            return;
        if (expired || no_socket || (attempts > 1 && !was_expired))
            __builtin_memcpy(c, e, sizeof(*c));
        if (was_expired) {
            if (attempts > 1)
                e->attempts = attempts - 1;
            else
                ev_pending.delete(key);
        } else if (ev_pending.delete(key) == 0) {
            if (expired)
                dnsev_emit(ctx, EV_DNS_TIMEOUT, netns, c, sent, 0, NO_RCODE, 0, 0);
            if (attempts > 1) {
                c->attempts = attempts - 1;
                c->expired = 1;
                ev_pending.insert(key, c);  // a record reads neither field
            }
        }
        if (no_socket || expired)
            dnsev_emit(ctx, EV_DNS_LATE_ANSWER, netns, c, sent, now, rcode, late, 0);
        q->sent = sent;
        q->timeout = timeout;
    }
    if (servfail)
        dnsev_emit(ctx, EV_DNS_SERVFAIL, netns, q, q->sent, now, rcode, rcode, 0);
    else if (nxdomain)
        dnsev_nxdomain(ctx, netns, q, now);
}

// One client-side DNS message at `off`: its query or its answer.
static __always_inline void dnsev_message(struct __sk_buff *skb, u32 off, u8 egress,
                                          u8 transport, struct dq_val *q) {
    u8 h[12];
    if (bpf_skb_load_bytes(skb, off, h, 12) != 0 || h[4] != 0 || h[5] != 1)
        return;
    u8 response = h[2] >> 7, opcode = (h[2] >> 3) & 0xF, rcode = h[3] & 0xF;
    if (egress == response)  // the pod is the server: its own side is counted, not recorded
        return;
    if (opcode == 3 || opcode > 6)  // counting.c's not_dns: neither counted nor recorded
        return;
    // A query's name is kept for its records; an answer's question is read only for a
    // record of its own (SERVFAIL, REFUSED, NXDOMAIN): the match needs the header alone, and
    // matches as counting.c's does whether or not the question parses.
    u8 named = 1;
    if (!response || rcode == 2 || rcode == 3 || rcode == 5)
        named = dnsev_question(skb, off + 12, q) == 0;
    if (!response && !named)
        return;
    u64 netns = bpf_get_netns_cookie(skb), now = bpf_ktime_get_ns();
    struct dq_key key = {.netns = netns, .port = q->client_port, .id = (h[0] << 8) | h[1],
                         .transport = transport};
    q->transport = transport;
    q->sent = 0;
    if (response)
        dnsev_answer(skb, netns, &key, q, rcode, 0, named, now);
    else
        dnsev_query(skb, netns, &key, q, now);
}

// The packet's endpoints into q (client: the local end on egress, the remote one on
// ingress) and its DNS payload's offset: after the UDP header, or the start of the TCP
// segment's data (proto in *tcp); 0 when it is not a whole DNS packet to parse.
static __always_inline u32 dnsev_flow(struct __sk_buff *skb, u8 egress, struct dq_val *q,
                                      u8 *tcp) {
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    u8 *ip = data, proto, *src, *dst;
    u32 l4;
    if (data + 40 > end)  // an IP header and the ports at least (v4 with DNS: > 40)
        return 0;
    if (ip[0] >> 4 == 4) {
        if ((ip[6] & 0x3F) | ip[7])
            return 0;
        proto = ip[9];
        l4 = (ip[0] & 0xF) * 4;
        q->family = ONR_AF_INET;
        src = ip + 12;
        dst = ip + 16;
    } else if (ip[0] >> 4 == 6) {
        if (data + 48 > end)
            return 0;
        proto = ip[6];
        l4 = 40;
        q->family = 10;
        src = ip + 8;
        dst = ip + 24;
    } else {
        return 0;
    }
    if ((proto != 17 && proto != 6) || l4 < 20 || l4 > 60)
        return 0;
    u8 *ports = ip + l4;
    if ((void *)(ports + 13) > end)
        return 0;
    u16 sport = (ports[0] << 8) | ports[1], dport = (ports[2] << 8) | ports[3];
    if (!DNS_PORT(sport) && !DNS_PORT(dport))
        return 0;
    __builtin_memcpy(q->client, egress ? src : dst, 16);
    __builtin_memcpy(q->server, egress ? dst : src, 16);
    q->client_port = egress ? sport : dport;
    q->server_port = egress ? dport : sport;
    *tcp = proto == 6;
    return proto == 17 ? l4 + 8 : l4 + (ports[12] >> 4) * 4;
}

// A TCP segment: length-prefixed messages (RFC 7766 6.2.1.1: a client may pipeline; glibc
// writes its A and AAAA queries in one segment, resolv/res_send.c send_vc). As counting.c's
// dns_tcp: the first message here, the next ones by dnsev_tcp_next, a program of its own
// reached by tail call (each message is a walk of dnsev_message for the verifier, and bcc
// links no bpf-to-bpf call), up to DNSEV_TCP_MESSAGES per segment. Its state in skb->cb (the
// kernel saves and restores cb around a cgroup program: net/core/filter.c
// bpf_prog_run_save_cb via bpf_prog_run_array_cg): cb[0] the next message's length prefix,
// cb[1] egress, cb[2] messages parsed. The endpoints are parsed again from the packet
// there, not kept in the per-CPU scratch across the call.
#define DNSEV_TCP_MESSAGES 4
BPF_PROG_ARRAY(dnsev_next, 1);  // [0]: dnsev_tcp_next, set by user space (spec.py)

// dns_tcp_after: include/dnstcp.h (shared with counting.c)

static __always_inline void dnsev_tcp_step(struct __sk_buff *skb, u32 off, u8 egress, u32 n,
                                           struct dq_val *q) {
    dnsev_message(skb, off + 2, egress, 1, q);
    u32 next = dns_tcp_after(skb, off);
    if (!next || n + 1 >= DNSEV_TCP_MESSAGES)
        return;
#ifndef HOSTED_EVENTS_DNS
    skb->cb[0] = next;
    skb->cb[1] = egress;
    skb->cb[2] = n + 1;
    dnsev_next.call(skb, 0);
#endif
}

static __always_inline int dnsev_skb(struct __sk_buff *skb, u8 egress) {
    u32 zero = 0;
    u8 tcp = 0;
    struct dq_val *q = dq_scratch.lookup(&zero);
    if (!q)
        return 1;
    u32 off = dnsev_flow(skb, egress, q, &tcp);
    if (!off)
        return 1;
    if (!tcp)
        dnsev_message(skb, off, egress, 0, q);
    else if (skb->len >= off + 14)  // a segment that starts with a length-prefixed message
        dnsev_tcp_step(skb, off, egress, 0, q);
    return 1;
}

#ifdef HOSTED_EVENTS_DNS
// Compiled into the counting object (events/hosting.py): counting.c's programs call
// dnsev_skb at each packet end and dnsev_tcp_more for each further message of a TCP
// segment from its own dns_tcp_next (one tail call per object), so the records cost no
// invocation of their own. Its skb:kfree_skb handler is called by the object's entry.
static __always_inline void dnsev_tcp_more(struct __sk_buff *skb, u32 off, u8 egress) {
    u32 zero = 0;
    u8 tcp = 0;
    struct dq_val *q = dq_scratch.lookup(&zero);
    if (q && off <= 0xFFFF && skb->len >= off + 14 && dnsev_flow(skb, egress, q, &tcp) && tcp)
        dnsev_message(skb, off + 2, egress, 1, q);
}
#else
int dnsev_tcp_next(struct __sk_buff *skb) {
    u32 off = skb->cb[0], egress = skb->cb[1] & 1, n = skb->cb[2], zero = 0;
    u8 tcp = 0;
    struct dq_val *q = dq_scratch.lookup(&zero);
    if (!q || n >= DNSEV_TCP_MESSAGES || off > 0xFFFF || skb->len < off + 14)
        return 1;
    if (dnsev_flow(skb, egress, q, &tcp) && tcp)
        dnsev_tcp_step(skb, off, egress, n, q);
    return 1;
}

int dnsev_egress(struct __sk_buff *skb) { return dnsev_skb(skb, 1); }
int dnsev_ingress(struct __sk_buff *skb) { return dnsev_skb(skb, 0); }
#endif

#ifdef NO_SOCKET_REASON
#define DNSEV_SKB_BASE (OFF_SKB_TH & ~7)  // 8-aligned, so head is read aligned
#if OFF_SKB_HEAD + 8 - DNSEV_SKB_BASE > SKB_WINDOW || OFF_SKB_HEAD < DNSEV_SKB_BASE \
    || OFF_SKB_NH < DNSEV_SKB_BASE
#error "struct sk_buff: transport_header, network_header and head are not within SKB_WINDOW bytes"
#endif
// A late answer to a socket that is gone (counting.c's dns_no_socket says why this way).
// Every datagram to a closed port of the node gets here: as counting.c's, one read for the
// header offsets and head (adjacent in struct sk_buff), one for the UDP and DNS headers,
// and the IP header only for an answer from a DNS port.
static __always_inline int dnsev_gone(struct kfree_skb_args *args) {
    if (args->reason != NO_SOCKET_REASON)
        return 0;
    u64 win[SKB_WINDOW / 8];
    u64 skb = args->skbaddr;
    if (bpf_probe_read_kernel(win, sizeof(win), (void *)(skb + DNSEV_SKB_BASE)))
        return 0;
    u8 *w = (u8 *)win;
    u16 th = *(u16 *)(w + OFF_SKB_TH - DNSEV_SKB_BASE);
    u16 nh = *(u16 *)(w + OFF_SKB_NH - DNSEV_SKB_BASE);
    u64 head = win[(OFF_SKB_HEAD - DNSEV_SKB_BASE) / 8];
    u8 u[20], ip[40];
    if (!head || th == 0xFFFF || nh == 0xFFFF
        || bpf_probe_read_kernel(u, sizeof(u), (void *)(head + th)))
        return 0;
    u16 sport = (u[0] << 8) | u[1], dport = (u[2] << 8) | u[3];
    if (!DNS_PORT(sport) || DNS_PORT(dport) || !(u[10] >> 7) || u[12] || u[13] != 1)
        return 0;
    u32 zero = 0;
    struct dq_val *q = dq_scratch.lookup(&zero);
    if (!q || bpf_probe_read_kernel(ip, sizeof(ip), (void *)(head + nh)))
        return 0;
    if (ip[0] >> 4 == 4 && ip[9] == 17) {
        q->family = ONR_AF_INET;
        __builtin_memcpy(q->server, ip + 12, 4);
        __builtin_memcpy(q->client, ip + 16, 4);
    } else if (ip[0] >> 4 == 6 && ip[6] == 17) {
        q->family = 10;
        __builtin_memcpy(q->server, ip + 8, 16);
        __builtin_memcpy(q->client, ip + 24, 16);
    } else {
        return 0;
    }
    u16 udp_len = (u[4] << 8) | u[5];
    u32 n = udp_len > 20 ? udp_len - 20 : 0;
    n = n > 255 ? 255 : n;
    if (n < 5 || bpf_probe_read_kernel(q->name, n & 0xFF, (void *)(head + th + 20)))
        return 0;
    int pos = dnsev_walk(q, n);
    u8 qt[2];
    if (pos < 0 || bpf_probe_read_kernel(qt, 2, (void *)(head + th + 20 + pos + 1)))
        return 0;
    q->name_len = pos + 1;
    q->qtype = (qt[0] << 8) | qt[1];
    q->client_port = dport;
    q->server_port = sport;
    q->transport = 0;
    q->sent = 0;
    u64 net = net_of_skb(skb), netns = 0;  // the cookie, as bpf_get_netns_cookie gives it
    if (!net || bpf_probe_read_kernel(&netns, sizeof(netns), (void *)(net + OFF_NET_COOKIE)))
        return 0;
    struct dq_key key = {.netns = netns, .port = dport, .id = (u[8] << 8) | u[9]};
    dnsev_answer(EV_CTX(args), netns, &key, q, u[11] & 0xF, 1, 1, bpf_ktime_get_ns());
    return 0;
}

int dnsev_no_socket(struct kfree_skb_args *args) {
#ifdef HOSTED_EVENTS_DNS
    return 0;  // counting.c's dns_no_socket calls dnsev_gone once its own checks passed: a
               // drop that is no DNS answer reads the sk_buff once, not twice
#else
    return dnsev_gone(args);
#endif
}
#else
int dnsev_no_socket(void *args) { return 0; }
#endif
