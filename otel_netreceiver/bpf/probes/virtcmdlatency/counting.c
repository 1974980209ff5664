// virtcmdlatency: virtio-net control-queue command latency (MAC, RX mode, MQ, offloads...),
// log2 histogram of nanoseconds per command class. No tracepoint covers it, so it needs a
// function hook: fentry/fexit (BPF trampolines) on VIRT_FUNCTION, the function that sends a
// command and busy-waits for the device's answer (drivers/net/virtio_net.c; renamed from
// virtnet_send_command to virtnet_send_command_reply in Linux 6.11).
struct cmd_key { u32 class; u32 slot; };
struct class_key { u32 class; };
BPF_HASH(started, u64, u64, 1024);       // thread -> (class << 56 | start ns)
BPF_HISTOGRAM(cmd_latency, struct cmd_key, 1024);
BPF_HASH(cmd_sum, struct class_key, u64, 64);

KFUNC_PROBE(VIRT_FUNCTION, void *vi, u8 class, u8 cmd) {
    u64 id = bpf_get_current_pid_tgid(), v = bpf_ktime_get_ns();
    u64 packed = ((u64)class << 56) | (v & 0x00FFFFFFFFFFFFFFULL);
    started.update(&id, &packed);
    return 0;
}

KRETFUNC_PROBE(VIRT_FUNCTION, void *vi) {  // only the first argument: the count differs by version
    u64 id = bpf_get_current_pid_tgid();
    u64 *p = started.lookup(&id);
    if (!p)
        return 0;
    u64 delta = (bpf_ktime_get_ns() & 0x00FFFFFFFFFFFFFFULL) - (*p & 0x00FFFFFFFFFFFFFFULL);
    struct cmd_key key = {(u32)(*p >> 56), bpf_log2l(delta)};
    started.delete(&id);
    cmd_latency.increment(key);
    struct class_key ck = {key.class};
    u64 zero = 0, *sum = cmd_sum.lookup_or_try_init(&ck, &zero);
    if (sum) __sync_fetch_and_add(sum, delta);
    return 0;
}
