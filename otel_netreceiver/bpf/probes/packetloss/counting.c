// packetloss: skb:kfree_skb counted in the kernel per (drop location, namespace, reason).
// A flood repeats one key (the same socketless port, the same pod), so each CPU keeps the
// last key and its pending count in a per-CPU array slot (an inlined lookup, no hash):
// a drop with the same key only increments the slot; a different key first moves the
// pending count into the per-CPU hash (one map operation, as before the slot; two separate
// maps measured 204 ns/event, see BENCHMARKS.md). User space adds each slot to the hash
// (packetloss/slots.py). The slot is changed inside a sequence count that is odd while it
// changes; the increments are atomic fetch-adds, the only BPF instructions that order
// memory (BPF has no barrier instruction; JITs emit fetch-adds fully ordered: x86 lock
// xadd, arm64 LDADDAL or LL/SC + DMB ISH), so a reader that sees an even, unchanged count
// before and after its hash read saw a whole slot whose pending count is not in the hash.
ARGS_STRUCT

struct drop_key { u64 location; u64 netns; u32 reason; u32 pad; };  // netns: netns.h key
BPF_PERCPU_HASH(drops, struct drop_key, u64, 16384);
struct drop_slot { u64 seq; struct drop_key key; u64 pending; };
BPF_PERCPU_ARRAY(drop_last, struct drop_slot, 1);

static __always_inline void drop_count(struct drop_key *key, u64 n) {
    u64 *v = drops.lookup(key);
    if (v) *v += n;  // only when the key changes; the slot's sequence orders the reader
    else if (drops.update(key, &n) != 0) count_lost();
}

int on_kfree_skb(struct kfree_skb_args *args) {
    struct drop_key key = {};
    u64 sk = args->rx_sk;
    key.location = args->location;
    key.reason = args->reason;
    key.netns = sk ? netns_key_of_sock(sk) : netns_key_of_skb(args->skbaddr);
    u32 zero = 0;
    struct drop_slot *s = drop_last.lookup(&zero);
    if (!s) { drop_count(&key, 1); return 0; }
    if (s->pending && s->key.location == key.location && s->key.netns == key.netns
        && s->key.reason == key.reason) {
        s->pending++;  // the slot is this CPU's and programs do not nest on a CPU
        return 0;
    }
    struct drop_key old = s->key;
    u64 pending = s->pending;
    u64 seq = __sync_fetch_and_add(&s->seq, 1);  // odd: changing (value used: fetch form)
    s->key = key;
    s->pending = 1;
    if (__sync_fetch_and_add(&s->seq, 1) != seq + 1) return 0;  // even again; never taken
    if (pending) drop_count(&old, pending);
    return 0;
}
