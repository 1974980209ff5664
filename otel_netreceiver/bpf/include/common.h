// Shared by every probe.

// Updates that failed because a map was full: exported, never silent.
BPF_PERCPU_ARRAY(lost, u64, 1);

static __always_inline void count_lost(void) {
    u32 zero = 0;
    u64 *v = lost.lookup(&zero);
    if (v) (*v)++;
}
