// testprobe: getppid() calls, node wide; the smallest probe, registered only in the copy of the
// package tests/integration/test_adding_a_probe.py makes.
BPF_PERCPU_ARRAY(calls, u64, 1);

int on_getppid(void *args) {
    u32 zero = 0;
    u64 *v = calls.lookup(&zero);
    if (v) (*v)++;
    return 0;
}
