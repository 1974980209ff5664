// dns: DNS queries and responses and link-local packets of every pod, at its sockets.
//
// Hook: BPF_PROG_TYPE_CGROUP_SKB on the cgroup v2 root (inet egress and ingress, a bpf_link
// per direction, so the programs go away with the agent). The kernel runs them only for
// packets of local sockets (net/ipv4/ip_output.c ip_finish_output; net/core/filter.c
// sk_filter_trim_cap): once at the sending socket and once at the receiving one, never for
// a packet the node forwards, so a pod's DNS is seen in its own namespace whatever path it
// takes. The packet is read with direct packet access (no helper) from the IP header: a
// packet that is neither on a DNS port nor to a service address costs a few loads and
// compares on top of the invocation (BENCHMARKS.md, "DNS probe").
//
// DNS_PORT(p), SERVICE_V4(a), SERVICE_V6(w) and the other defines are rendered from
// configuration (bpf/probes/dns/spec.py): compare chains, no map lookup per packet. A
// service code is resolver class | link-local service << 4.
//
// Matching is in the kernel: a client query leaves an entry in `pending` keyed by
// (namespace, client port, transaction id, transport); its response deletes it and feeds the
// latency histogram. Nothing fires when no answer comes: user space sweeps `pending` every
// cycle, takes each attempt older than its timeout atomically (lookup-and-delete), counts the
// timeout and puts the entry back marked `expired`, where a late answer still finds it
// (dns/pending.py). An attempt the kernel sees expire first (a late answer, or the client
// re-sending the same id) is counted here instead: each attempt's timeout is counted once,
// by whichever side takes its outstanding entry out. An entry counts its attempts: while
// more than one is unanswered, an answer leaves it (expired) for the next, so each answer
// to a re-sent id matches (client_response_at()).
// A response to a socket that no longer exists never reaches a socket hook: skb:kfree_skb
// with reason NO_SOCKET (net/ipv4/udp.c __udp4_lib_rcv) catches it, reading the UDP and DNS
// headers at BTF offsets.
#ifndef NETNS_BY_COOKIE
#error "the dns probe keys its maps by namespace cookie (bpf_get_netns_cookie): this kernel gives user space no namespace cookie (ioctl NS_GET_ID, Linux 6.18)"
#endif
KFREE_ARGS_STRUCT

#define K_QUERY 1
#define K_RESPONSE 2
#define K_TRUNCATED 3
#define K_TIMEOUT 4
#define K_LATE 5
#define K_UNMATCHED 6
#define K_UNPARSED 7
#define K_RETRANSMIT 8
// 9, 10: were the link-local counts, now in ll_counts
#define K_NDOTS 11
#define K_TCP_FALLBACK 12
#define FALLBACK_OK 0
#define ROLE_CLIENT 0
#define ROLE_SERVER 1
#define LATE_AFTER_TIMEOUT 0
#define LATE_NO_SOCKET 1
// unparsed reasons, the order of dns/message.py Unparsed
#define U_SHORT_HEADER 0
#define U_NOT_DNS 1
#define U_LABEL_PAST_END 2
#define U_BAD_LABEL 3
#define U_NAME_TOO_LONG 4
#define U_BAD_POINTER 5
#define U_TCP_PAST_LIMIT 7  // 6 is BAD_TCP_LENGTH (user space's parser only)
#define T_UDP 0
#define T_TCP 1
#define QMAX 272  // a question: a name of at most 255 bytes, type and class
#define SCRATCH_CODE 504  // a byte of the question scratch past QMAX (dns_message)

struct dns_key { u64 netns; u8 kind; u8 role; u8 rclass; u8 value; u8 transport; u8 pad[3]; };
BPF_PERCPU_HASH(dns_counts, struct dns_key, u64, 16384);
struct lat_key { u64 netns; u8 rclass; u8 slot; u8 pad[6]; };
struct lat_val { u64 count; u64 sum; };
BPF_PERCPU_HASH(dns_latency, struct lat_key, struct lat_val, 8192);
struct pend_key { u64 netns; u16 port; u16 id; u8 transport; u8 pad[3]; };
// `expired`: user space counted the last attempt's timeout (or an earlier attempt was
// answered): the entry waits only for late answers
struct pend_val { u64 sent; u64 timeout; u8 rclass; u8 qclass; u16 attempts; u8 expired;
                  u8 pad[3]; };
// Outstanding and expired attempts in one table: a query touches one hash bucket (the
// table is large and the ids random: each bucket is a cache miss, ~60 ns here). A plain
// (preallocated) hash, not an LRU: an LRU insert takes the common LRU's lock and list
// (kernel/bpf/bpf_lru_list.c), ~65-90 ns more per query (BENCHMARKS.md, "The dns probe:
// cost per DNS packet"). User space takes every expired and stale entry out each cycle
// (reader.py), so a full table means a burst of outstanding queries: the insert fails and
// is counted lost, where an LRU would have evicted another attempt uncounted.
BPF_HASH(pending, struct pend_key, struct pend_val, PENDING_MAX * 2);
BPF_HASH(timeouts, u64, u64, 16384);  // namespace → its resolv.conf timeout (user space)
struct scratch { u8 b[512]; };
BPF_PERCPU_ARRAY(question, struct scratch, 1);
// A question's identity for the name checks below, without keeping the name: a hash of the
// whole name, one of its first label, and its wire length (case folded: bit 0x20 set).
struct qinfo { u64 name; u64 first; u32 len; u32 pad; };
// ndots runs (search-path expansion): (namespace, first label) → the run so far
struct run_key { u64 netns; u64 first; };
struct run_val { u64 last; u32 start_len; u32 last_len; u32 counted; u32 pad; };
// A plain hash, not an LRU (an LRU insert takes the common LRU's lock: 25-35 ns more per
// NXDOMAIN of a new first label, BENCHMARKS.md); user space forgets the runs past their gap
// each cycle (reader.py), the ones no answer comes back to delete here.
BPF_HASH(ndots_runs, struct run_key, struct run_val, 2048);
// truncated UDP answers waiting for their TCP retry: (namespace, name) → when, timeout
struct tc_key { u64 netns; u64 name; };
struct tc_val { u64 at; u64 timeout; u8 rclass; u8 pad[7]; };
BPF_TABLE("lru_hash", struct tc_key, struct tc_val, tc_wait, 2048);

#ifdef HOSTED_EVENTS_DNS
// The DNS failure records' handlers (events.c), compiled after this text into this object
// when both are on (events/hosting.py), alone or in the socket-hook composite with peers:
// called from this text's handlers, so a packet end costs one invocation for the counts
// and the records. Declared here, defined there (the
// attribute first: bpf/compose.py `declared` takes a line starting `static` for a
// definition of this text's, which would keep the two texts apart).
__attribute__((always_inline)) static inline int dnsev_skb(struct __sk_buff *skb, u8 egress);
__attribute__((always_inline)) static inline void dnsev_tcp_more(struct __sk_buff *skb, u32 off,
                                                                 u8 egress);
#ifdef NO_SOCKET_REASON
__attribute__((always_inline)) static inline int dnsev_gone(struct kfree_skb_args *args);
#endif
#endif

static __always_inline void count(u64 netns, u8 kind, u8 role, u8 rclass, u8 value,
                                  u8 transport, u64 n) {
    struct dns_key key = {.netns = netns, .kind = kind, .role = role, .rclass = rclass,
                          .value = value, .transport = transport};
    u64 *v = dns_counts.lookup(&key);
    if (v) *v += n;
    else if (dns_counts.update(&key, &n) != 0) count_lost();
}

static __always_inline void observe(u64 netns, u8 rclass, u64 delta) {
    struct lat_key key = {.netns = netns, .rclass = rclass, .slot = bpf_log2l(delta)};
    struct lat_val zero = {}, *v = dns_latency.lookup_or_try_init(&key, &zero);
    if (!v) { count_lost(); return; }
    v->count++;
    v->sum += delta;
}

// FNV-1a over 8-byte words of the wire name (the bytes past it masked off), case folded;
// `first`: the first label's first 15 bytes (its length byte included), two loads, no loop.
static __always_inline void name_hashes(struct scratch *q, u32 len, u32 first,
                                        struct qinfo *info) {
    u64 h = 14695981039346656037ULL;
    for (int i = 0; i < QMAX / 8; i++) {
        u32 at = i * 8;
        if (at >= len)
            break;
        u64 w = *(u64 *)&q->b[at & 0x1f8] | 0x2020202020202020ULL;
        if (len - at < 8)
            w &= (1ULL << (((len - at) & 7) * 8)) - 1;
        h = (h ^ w) * 1099511628211ULL;
    }
    u64 w0 = *(u64 *)&q->b[0] | 0x2020202020202020ULL;
    u64 w1 = *(u64 *)&q->b[8] | 0x2020202020202020ULL;
    if (first < 8) {
        w0 &= (1ULL << ((first & 7) * 8)) - 1;
        w1 = 0;
    } else if (first < 16) {
        w1 &= (1ULL << ((first & 7) * 8)) - 1;
    }
    info->name = h;
    info->first = (w0 ^ first) * 1099511628211ULL ^ w1;
    info->len = len;
}

// The first question's type class (0 A, 1 AAAA, 2 other), or -1 - unparsed reason.
// RFC 1035 4.1.2; the same checks as dns/message.py parse_complete for a first question
// (a compression pointer there can only point forwards or into the header: BAD_POINTER).
static __always_inline int question_class(struct __sk_buff *skb, u32 off, u32 left,
                                          struct qinfo *info) {
    u32 zero = 0;
    struct scratch *q = question.lookup(&zero);
    if (!q || left < 1 || left > 0xFFFF)
        return -1 - U_LABEL_PAST_END;
    u32 n = left & 0x1FF;  // bounds the verifier can see in the register it checks
    if (left >= QMAX)
        n = QMAX;
    if (n < 1 || n > QMAX || bpf_skb_load_bytes(skb, off, q->b, n) != 0)
        return -1 - U_LABEL_PAST_END;
    u32 pos = 0, wire = 1, first = 0;
    for (int i = 0; i < 128; i++) {
        if (pos >= n)
            return -1 - U_LABEL_PAST_END;
        u8 len = q->b[pos & 0x1ff];
        if (len == 0)
            break;
        if (i == 0)
            first = len + 1;
        if ((len & 0xC0) == 0xC0)
            return -1 - U_BAD_POINTER;
        if (len & 0xC0)
            return -1 - U_BAD_LABEL;
        wire += len + 1;
        if (wire > 255)
            return -1 - U_NAME_TOO_LONG;
        pos += len + 1;
    }
    if (pos + 5 > n)
        return -1 - U_LABEL_PAST_END;
    u16 qtype = (q->b[(pos + 1) & 0x1ff] << 8) | q->b[(pos + 2) & 0x1ff];
    if (info)
        name_hashes(q, pos + 1, first, info);
    return qtype == 1 ? 0 : qtype == 28 ? 1 : 2;
}

// A new query is one insert (BPF_NOEXIST): no lookup before it. It fails when the key has
// an entry: the client re-sent the id, while it was outstanding or after user space counted
// its timeout (then its earlier attempts may still be answered: `attempts` counts them).
static __always_inline void client_query(u64 netns, u16 port, u16 id, u8 transport,
                                         u8 rclass, u8 qclass) {
    struct pend_key key = {.netns = netns, .port = port, .id = id, .transport = transport};
    u64 now = bpf_ktime_get_ns();
    count(netns, K_QUERY, ROLE_CLIENT, rclass, qclass, transport, 1);
    u64 *t = timeouts.lookup(&netns);
    struct pend_val v = {.sent = now, .timeout = t ? *t : DEFAULT_TIMEOUT_NS,
                         .rclass = rclass, .qclass = qclass, .attempts = 1};
    if (pending.insert(&key, &v) == 0)
        return;
    struct pend_val *e = pending.lookup(&key);
    if (!e) {  // the table is full
        count_lost();
        return;
    }
    if (e->expired) {  // its timeout is counted already (user space's sweep)
        count(netns, K_RETRANSMIT, ROLE_CLIENT, rclass, 0, transport, 1);
        v.attempts += e->attempts;
        *e = v;
        return;
    }
    if (now - e->sent >= e->timeout)
        count(netns, K_TIMEOUT, ROLE_CLIENT, e->rclass, 0, transport, 1);
    count(netns, K_RETRANSMIT, ROLE_CLIENT, e->rclass, 0, transport, 1);
    e->sent = now;
    e->attempts++;
}

// An answer for the client at `port`, at `now`: match, time, and count it in time, late or
// unmatched. An attempt's timeout is counted here only when this program takes its
// outstanding entry out (delete succeeds): user space's sweep takes it atomically otherwise
// (lookup-and-delete). While more attempts of the id are unanswered, the entry stays, as
// expired and one attempt fewer (no sweep counts another timeout for it), where the answer
// to an earlier attempt of a re-sent id (glibc: same id, same port) still matches: late
// when it comes after the last attempt's timeout or to a gone socket, like any answer there.
static __always_inline void client_response_at(u64 netns, u16 port, u16 id, u8 transport,
                                               u8 rclass, u8 flags2, u8 flags3, u8 no_socket,
                                               u64 now) {
    struct pend_key key = {.netns = netns, .port = port, .id = id, .transport = transport};
    struct pend_val *e = pending.lookup(&key), v;
    if (e) {
        v = *e;
        u64 delta = now - v.sent;
        rclass = v.rclass;
        observe(netns, rclass, delta);
        if (no_socket || delta >= v.timeout)
            count(netns, K_LATE, ROLE_CLIENT, rclass,
                  no_socket ? LATE_NO_SOCKET : LATE_AFTER_TIMEOUT, transport, 1);
        if (v.expired) {
            if (v.attempts > 1)
                e->attempts = v.attempts - 1;
            else
                pending.delete(&key);
        } else if (pending.delete(&key) == 0) {
            if (delta >= v.timeout)
                count(netns, K_TIMEOUT, ROLE_CLIENT, rclass, 0, transport, 1);
            v.attempts--;
            v.expired = 1;
            if (v.attempts > 0 && pending.insert(&key, &v) != 0)
                count_lost();
        }
    } else {
        count(netns, K_UNMATCHED, ROLE_CLIENT, rclass, 0, transport, 1);
    }
    count(netns, K_RESPONSE, ROLE_CLIENT, rclass, flags3 & 0xF, transport, 1);
    if (flags2 & 0x02)
        count(netns, K_TRUNCATED, ROLE_CLIENT, rclass, 0, transport, 1);
}

static __always_inline void client_response(u64 netns, u16 port, u16 id, u8 transport,
                                            u8 rclass, u8 flags2, u8 flags3, u8 no_socket) {
    client_response_at(netns, port, id, transport, rclass, flags2, flags3, no_socket,
                       bpf_ktime_get_ns());
}

// Search-path expansion (the ndots pattern): the pod's resolver tried a name under several
// suffixes, so answers came for names that share their first label but differ in length,
// at least one of them NXDOMAIN before another. One count per run: a run starts at an
// NXDOMAIN, is counted at the first answer (NXDOMAIN or not) for the same first label and
// another length within NDOTS_GAP_NS of the last, ends at a non-NXDOMAIN answer, and starts
// over when the run's first name comes back after it was counted (the next lookup).
#define NDOTS_GAP_NS 5000000000ULL
static __always_inline void ndots_step(u64 netns, struct qinfo *qi, u8 rcode, u8 rclass,
                                       u64 now) {
    struct run_key key = {.netns = netns, .first = qi->first};
    struct run_val *r = ndots_runs.lookup(&key);
    if (r && now - r->last >= NDOTS_GAP_NS) {
        ndots_runs.delete(&key);
        r = NULL;
    }
    if (r && r->counted && rcode == 3 && qi->len == r->start_len && qi->len != r->last_len) {
        r->counted = 0;  // the same lookup again, from its first name: a new run
        r->last_len = qi->len;
        r->last = now;
        return;
    }
    if (r && !r->counted && qi->len != r->last_len) {
        count(netns, K_NDOTS, ROLE_CLIENT, rclass, 0, 0, 1);
        r->counted = 1;
    }
    if (rcode == 3) {
        if (r) {
            r->last = now;
            r->last_len = qi->len;
        } else {
            struct run_val v = {.last = now, .start_len = qi->len, .last_len = qi->len};
            ndots_runs.update(&key, &v);
        }
    } else if (r) {
        ndots_runs.delete(&key);
    }
}

// TC -> TCP: a truncated UDP answer waits in tc_wait for a TCP answer to the same name. The
// TCP answer that takes it counts ok (failed if it came after the pod's timeout); user space
// takes the ones nobody answered once their timeout passed and counts them failed (reader.py).
static __always_inline void fallback_step(u64 netns, struct qinfo *qi, u8 flags2,
                                          u8 transport, u8 rclass, u64 now) {
    struct tc_key key = {.netns = netns, .name = qi->name};
    if (transport == T_UDP) {
        if (flags2 & 0x02) {
            u64 *t = timeouts.lookup(&netns);
            struct tc_val v = {.at = now, .timeout = t ? *t : DEFAULT_TIMEOUT_NS,
                               .rclass = rclass};
            if (tc_wait.update(&key, &v) != 0)
                count_lost();
        }
        return;
    }
    struct tc_val *e = tc_wait.lookup(&key);
    if (!e)
        return;
    u8 value = now - e->at < e->timeout ? FALLBACK_OK : FALLBACK_OK + 1;
    rclass = e->rclass;
    if (tc_wait.delete(&key) == 0)  // exactly once against user space's sweep
        count(netns, K_TCP_FALLBACK, ROLE_CLIENT, rclass, value, T_TCP, 1);
}

// One DNS message at `off` (after the TCP length prefix): client or server side by the QR
// bit and direction. `remote`/`local`: service codes of the two addresses.
static __always_inline void dns_message(struct __sk_buff *skb, u32 off, u8 egress,
                                        u8 transport, u16 sport, u16 dport, u8 remote,
                                        u8 local) {
    u8 h[12];
    u64 netns = bpf_get_netns_cookie(skb);
    if (skb->len < off + 12 || bpf_skb_load_bytes(skb, off, h, 12) != 0) {
        if (transport == T_UDP)
            count(netns, K_UNPARSED, ROLE_CLIENT, 0, U_SHORT_HEADER, transport, 1);
        return;
    }
    u8 opcode = (h[2] >> 3) & 0xF;
    if (h[4] != 0 || h[5] != 1 || opcode == 3 || opcode > 6) {
        if (transport == T_UDP)
            count(netns, K_UNPARSED, ROLE_CLIENT, 0, U_NOT_DNS, transport, 1);
        return;
    }
    u16 id = (h[0] << 8) | h[1];
    u8 response = h[2] >> 7, server = egress == response;
    // The service codes are constants of the compare chains: the verifier would walk what
    // follows once per pair of them (and the question walks below many times over). Through
    // memory they are any byte to it, so it walks it once.
    u32 zero = 0;
    struct scratch *sc = question.lookup(&zero);
    if (!sc)
        return;
    *(volatile u8 *)&sc->b[SCRATCH_CODE] = server ? local : remote;
    u8 code = *(volatile u8 *)&sc->b[SCRATCH_CODE];
    u8 rclass = code & 0xF, role = server ? ROLE_SERVER : ROLE_CLIENT;
    u16 port = DNS_PORT(dport) ? sport : dport;  // the client's
    u32 left = skb->len - off - 12;
    if (response && server) {  // counted by its header alone: no question walk
        count(netns, K_RESPONSE, ROLE_SERVER, rclass, h[3] & 0xF, transport, 1);
        if (h[2] & 0x02)
            count(netns, K_TRUNCATED, ROLE_SERVER, rclass, 0, transport, 1);
        return;
    }
    if (!response) {  // its type only: the name checks look at answers (no name hashes)
        int q = question_class(skb, off + 12, left, NULL);
        if (q < 0) {
            count(netns, K_UNPARSED, role, 0, (u8)(-1 - q), transport, 1);
            return;
        }
        if (server)
            count(netns, K_QUERY, ROLE_SERVER, rclass, q, transport, 1);
        else
            client_query(netns, port, id, transport, rclass, q);
        return;
    }
    struct qinfo qi = {};  // a client's answer: the question's hashes for the name checks
    int q = question_class(skb, off + 12, left, &qi);
    u64 now = bpf_ktime_get_ns();  // one clock read for the match and the name checks
    client_response_at(netns, port, id, transport, rclass, h[2], h[3], 0, now);
    if (q >= 0) {
        ndots_step(netns, &qi, h[3] & 0xF, rclass, now);
        fallback_step(netns, &qi, h[2], transport, rclass, now);
    }
}

// A TCP segment: length-prefixed messages (RFC 7766 6.2.1.1: a client may pipeline; glibc
// writes its A and AAAA queries in one segment). The first is parsed here; a next one whose
// header is in the segment by dns_tcp_next, a program of its own reached by tail call, and
// so on up to TCP_MESSAGES; one more is counted once as unparsed (tcp_messages_past_limit).
// A segment that does not start a message (the rest of one begun in an earlier segment) is
// not told apart: its header check fails silently.
// Why a tail call: each message is a walk of dns_message for the verifier (about 210k of the
// 1M instructions on ingress; bcc links no bpf-to-bpf call, a noinline function lands in
// .text, outside the program's section), and a loop walks it again per end state of the
// message before: two messages in one program exceed 1M. dns_tcp_next is verified once.
// Its state is in skb->cb (per packet; the kernel saves and restores cb around a cgroup
// program): cb[0] the next message's offset, cb[1] sport << 16 | dport, cb[2] egress | remote
// << 8 | local << 16, cb[3] messages parsed. A tail call does not return: it is this
// program's last act (in the socket-hook composite the entry makes it, after every probe's
// handler, when cb[4] is set), and the packet's verdict is dns_tcp_next's (always 1).
#define TCP_MESSAGES 4
BPF_PROG_ARRAY(dns_next, 1);  // [0]: dns_tcp_next, set by user space (spec.py)

// dns_tcp_after: include/dnstcp.h

static __always_inline void dns_tcp(struct __sk_buff *skb, u32 payload, u8 egress, u16 sport,
                                    u16 dport, u8 remote, u8 local) {
    if (skb->len < payload + 14)  // a segment that starts with a length-prefixed message
        return;
    dns_message(skb, payload + 2, egress, T_TCP, sport, dport, remote, local);
    u32 next = dns_tcp_after(skb, payload);
    if (!next)
        return;
    skb->cb[0] = next;
    skb->cb[1] = (u32)sport << 16 | dport;
    skb->cb[2] = egress | remote << 8 | local << 16;
    skb->cb[3] = 1;
#ifdef SOCKET_HOOK_COMPOSITE
    skb->cb[4] = 1;  // the composite's entry tail-calls after every probe's handler
#else
    dns_next.call(skb, 0);
#endif
}

int dns_tcp_next(struct __sk_buff *skb) {
    u32 off = skb->cb[0], ports = skb->cb[1], flow = skb->cb[2], n = skb->cb[3];
    if (n >= TCP_MESSAGES) {
        count(bpf_get_netns_cookie(skb), K_UNPARSED, ROLE_CLIENT, 0, U_TCP_PAST_LIMIT, T_TCP,
              1);
        return 1;
    }
    if (off > 0xFFFF || skb->len < off + 14)
        return 1;
    dns_message(skb, off + 2, flow & 1, T_TCP, ports >> 16, ports & 0xFFFF,
                (flow >> 8) & 0xFF, (flow >> 16) & 0xFF);
#ifdef HOSTED_EVENTS_DNS
    dnsev_tcp_more(skb, off, flow & 1);  // the same message for the records
#endif
    u32 next = dns_tcp_after(skb, off);
    if (!next)
        return 1;
    skb->cb[0] = next;
    skb->cb[3] = n + 1;
    dns_next.call(skb, 0);
    return 1;
}

// ---- link-local packets: per pod, per egress interface, per-second peak ----------------
// Only packets to a configured link-local service get here (the address compare before
// is the whole hot-path cost). Service codes 1..LL_ENI_SERVICES are answered by the ENI and
// count against its 1024 packets/s allowance; higher ones (NodeLocal DNSCache, the EKS Pod
// Identity agent) are answered on the node: counted per pod only.
// The egress interface: a pod's packet is seen at its own socket, in its own namespace, so
// skb->ifindex is the pod's eth0; user space resolves the host interface it leaves by (an
// RTM_GETROUTE as the node would route it: netns/egress.py) into ll_routes, keyed by
// (namespace cookie, service address); netns 0 holds the node's main-table route, used until
// a new namespace is resolved. LL_HOST marks the node's own namespace: its packets are at
// the host interface already (skb->ifindex at egress), and its sockets are told apart by
// their cgroup v2 id (hostNetwork pods).
#define LL_ENI_SERVICES 3
#define LL_HOST 0xFFFFFFFFU
struct ll_route_key { u64 netns; u32 addr[4]; };
BPF_HASH(ll_routes, struct ll_route_key, u32, 16384);
struct ll_key { u64 netns; u64 cgroup; u32 ifindex; u8 service; u8 pad[3]; };
struct ll_val { u64 packets; u64 bytes; };
BPF_PERCPU_HASH(ll_counts, struct ll_key, struct ll_val, 8192);
struct ll_total_key { u32 ifindex; u8 service; u8 pad[3]; };
BPF_PERCPU_HASH(ll_totals, struct ll_total_key, u64, 1024);
// (interface, second of bpf_ktime_get_ns) → packets to ENI-answered services: one shared
// counter per second (atomic), so a second's count is exact across CPUs; user space takes
// the finished seconds (lookup-and-delete) and reports the highest since its last read
struct ll_second_key { u32 ifindex; u32 pad; u64 second; };
BPF_HASH(ll_seconds, struct ll_second_key, u64, 4096);

static __always_inline void ll_per_second(u32 ifindex) {
    struct ll_second_key key = {.ifindex = ifindex, .second = bpf_ktime_get_ns() / 1000000000};
    u64 one = 1, *n = ll_seconds.lookup(&key);
    if (n) { __sync_fetch_and_add(n, 1); return; }
    if (ll_seconds.insert(&key, &one) == 0) return;
    n = ll_seconds.lookup(&key);  // another CPU made it first, or the map is full
    if (n) __sync_fetch_and_add(n, 1);
    else count_lost();
}

// `daddr`: the destination as include/sockhook.h parsed it (IPv4: word 0, the rest zero).
static __always_inline void linklocal(struct __sk_buff *skb, const u32 *daddr, u8 service) {
    struct ll_route_key route = {.netns = bpf_get_netns_cookie(skb)};
    __builtin_memcpy(route.addr, daddr, 16);
    struct ll_key key = {.netns = route.netns, .service = service};
    u32 *via = ll_routes.lookup(&route);
    if (!via && service <= LL_ENI_SERVICES) {  // not resolved yet: the node's own route
        route.netns = 0;
        via = ll_routes.lookup(&route);
    }
    if (via && *via == LL_HOST) {
        key.cgroup = bpf_skb_cgroup_id(skb);
        key.ifindex = skb->ifindex;
    } else if (via) {
        key.ifindex = *via;
    }
    if (service > LL_ENI_SERVICES)
        key.ifindex = 0;  // answered on the node: no interface, no allowance
    struct ll_val zero = {}, *v = ll_counts.lookup_or_try_init(&key, &zero);
    if (v) { v->packets++; v->bytes += skb->len; }
    else count_lost();
    if (service > LL_ENI_SERVICES)
        return;
    struct ll_total_key total = {.ifindex = key.ifindex, .service = service};
    u64 first = 1, *t = ll_totals.lookup(&total);
    if (t) (*t)++;
    else if (ll_totals.update(&total, &first) != 0) count_lost();
    ll_per_second(key.ifindex);
}

// The counts of one packet end (include/sockhook.h parsed the IP header: `p`).
static __always_inline int dns_counts_skb(struct __sk_buff *skb, const struct skb_pkt *p) {
    u8 egress = p->egress, proto = p->proto, remote, local;
    u32 l4 = p->l3;
    if (p->linear < 24)  // an IPv4 header and the ports at least
        return 1;
    if (p->version == 4) {
        if (p->frag)  // a fragment (more fragments, or an offset)
            return 1;
        u32 src = p->saddr[0], dst = p->daddr[0];
        remote = egress ? SERVICE_V4(dst) : SERVICE_V4(src);
        local = egress ? SERVICE_V4(src) : SERVICE_V4(dst);
    } else {
        const u32 *src = p->saddr, *dst = p->daddr;
        remote = egress ? SERVICE_V6(dst) : SERVICE_V6(src);
        local = egress ? SERVICE_V6(src) : SERVICE_V6(dst);
    }
    if (egress && remote >> 4)
        linklocal(skb, p->daddr, remote >> 4);
    if (!p->ports)  // TCP or UDP with its ports in reach (proto, l4 in 20..60)
        return 1;
    u16 sport = p->sport, dport = p->dport;
    if (!DNS_PORT(sport) && !DNS_PORT(dport))
        return 1;
    if (proto == 17) {
        dns_message(skb, l4 + 8, egress, T_UDP, sport, dport, remote, local);
        return 1;
    }
    if (!p->l4)  // the TCP data offset is not in reach
        return 1;
    dns_tcp(skb, l4 + p->l4, egress, sport, dport, remote, local);
    return 1;
}

// The socket-hook handler: this probe's two programs alone, or called by the socket-hook
// composite's entries (bpf/compose_hooks.py). With the records hosted (HOSTED_EVENTS_DNS,
// either way), their handler first: loaded alone, the counting TCP walk ends in a tail call.
static __always_inline int dns_skb(struct __sk_buff *skb, const struct skb_pkt *p) {
#ifdef HOSTED_EVENTS_DNS
    dnsev_skb(skb, p->egress);
#endif
    return dns_counts_skb(skb, p);
}
SOCKET_HOOK(dns, dns_skb)

// A datagram no socket took (classic tracepoint: the reason is in the record, so every other
// drop costs the invocation and one compare). Only UDP: TCP answers a closed port with RST.
// One definition whatever the kernel (its body is empty without drop reasons): with other
// probes on skb:kfree_skb it is a handler of their shared program (bpf/compose_hooks.py
// adopt), which calls it by this name.
#ifdef NO_SOCKET_REASON
#define SKB_BASE (OFF_SKB_TRANSPORT & ~7)  // 8-aligned, so head is read aligned
#if OFF_SKB_HEAD + 8 - SKB_BASE > SKB_WINDOW || OFF_SKB_HEAD < SKB_BASE \
    || OFF_SKB_NETWORK < SKB_BASE
#error "struct sk_buff: transport_header, network_header and head are not within SKB_WINDOW bytes"
#endif
#endif
int dns_no_socket(struct kfree_skb_args *args) {
#ifdef NO_SOCKET_REASON  // kernels before 5.17 have no drop reasons: nothing to see here
    if (args->reason != NO_SOCKET_REASON)
        return 0;
    // one read for the header offsets and head (adjacent in struct sk_buff: SKB_WINDOW
    // bytes from transport_header, checked above at compile time), one for the UDP and DNS
    // headers; the IP header is read only for a datagram from a DNS port
    u64 win[SKB_WINDOW / 8];
    u64 skb = args->skbaddr, head;
    if (bpf_probe_read_kernel(win, sizeof(win), (void *)(skb + SKB_BASE)))
        return 0;
    u8 *w = (u8 *)win;
    u16 th = *(u16 *)(w + OFF_SKB_TRANSPORT - SKB_BASE);
    u16 nh = *(u16 *)(w + OFF_SKB_NETWORK - SKB_BASE);
    head = win[(OFF_SKB_HEAD - SKB_BASE) / 8];
    u8 u[20], ip[10];  // UDP header and the first 12 bytes of a DNS header
    if (!head || th == 0xFFFF || bpf_probe_read_kernel(u, sizeof(u), (void *)(head + th)))
        return 0;
    u16 sport = (u[0] << 8) | u[1], dport = (u[2] << 8) | u[3];
    if (!DNS_PORT(sport) || DNS_PORT(dport) || !(u[10] >> 7) || u[12] || u[13] != 1)
        return 0;  // not a response from a DNS port
    if (bpf_probe_read_kernel(ip, sizeof(ip), (void *)(head + nh)))
        return 0;
    if ((ip[0] >> 4 == 4 ? ip[9] : ip[6]) != 17)  // UDP (IPv6: no extension headers)
        return 0;
    u64 netns = netns_key_of_skb(skb);
    client_response(netns, dport, (u[8] << 8) | u[9], T_UDP, 0, u[10], u[11], 1);
#ifdef HOSTED_EVENTS_DNS
    dnsev_gone(args);  // the records' (events.c): an answer from a DNS port, as checked here
#endif
#endif
    return 0;
}
