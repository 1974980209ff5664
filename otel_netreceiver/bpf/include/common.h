// Shared by every probe.

// Updates that failed because a map was full: exported, never silent. One slot per probe
// (LOST_SLOT, defined before each probe's text): probes sharing a tracepoint are compiled into
// one object and each still has its own count.
#ifndef LOST_SLOTS
#define LOST_SLOTS 1
#endif
BPF_PERCPU_ARRAY(lost, u64, LOST_SLOTS);

static __always_inline void count_lost_in(u32 slot) {
    u64 *v = lost.lookup(&slot);
    if (v) (*v)++;
}
#define count_lost() count_lost_in(LOST_SLOT)
