// kernellatency: time through the kernel's network stack, per namespace (0 rx, 1 tx).
// rx: from net:netif_receive_skb (the stack takes the skb from the device in the namespace it
//   is delivered in) to sock:sk_data_ready (the socket's reader is woken), on one CPU within
//   one NET_RX softirq run: the pending start is per CPU and cleared at irq:softirq_exit, so
//   deliveries deferred to process context (socket owned by the user) are not measured.
// tx: from syscalls:sys_enter_sendto / sys_enter_sendmsg to the first net:net_dev_queue of an
//   skb with a socket in the same thread (the data reached the device layer synchronously);
//   cleared at sock:sock_send_length, so sends that only queue data are not measured.
RX_ARGS_STRUCT
READY_ARGS_STRUCT
QUEUE_ARGS_STRUCT
SEND_ARGS_STRUCT
struct vec_args { u64 __pad; u32 vec; };

BPF_PERCPU_ARRAY(rx_start, u64, 1);                // per CPU: last netif_receive_skb (ns)
// thread -> send syscall entry (ns); deleted at sock_send_length (plain hash, as in
// socketlatency/counting.c: an LRU update per send syscall costs ~400 ns).
BPF_HASH(tx_start, u64, u64, 16384);

int kl_receive(struct rx_args *args) {
    u32 zero = 0;
    u64 *t = rx_start.lookup(&zero);
    if (t) *t = bpf_ktime_get_ns();
    return 0;
}

int kl_data_ready(struct ready_args *args) {
    u32 zero = 0;
    u64 *t = rx_start.lookup(&zero);
    if (!t || !*t)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *t;
    *t = 0;
    observe(netns_key_of_sock((u64)args->skaddr), 0, delta);
    return 0;
}

int kl_softirq_exit(struct vec_args *args) {
    u32 zero = 0;
    if (args->vec != 3)  // NET_RX_SOFTIRQ
        return 0;
    u64 *t = rx_start.lookup(&zero);
    if (t) *t = 0;
    return 0;
}

int kl_send_enter(void *args) {
    u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
    if (tx_start.update(&id, &now) != 0) count_lost();
    return 0;
}

int kl_queue(struct queue_args *args) {
    u64 id = bpf_get_current_pid_tgid(), sk = 0;
    u64 *t = tx_start.lookup(&id);
    if (!t)
        return 0;
    bpf_probe_read_kernel(&sk, sizeof(sk), (void *)((u64)args->skbaddr + OFF_SKB_SK));
    if (!sk)  // forwarded or socketless skbs are not this send's data
        return 0;
    u64 delta = bpf_ktime_get_ns() - *t;
    tx_start.delete(&id);
    observe(netns_key_of_sock(sk), 1, delta);
    return 0;
}

int kl_send_length(struct send_args *args) {
    u64 id = bpf_get_current_pid_tgid();
    tx_start.delete(&id);
    return 0;
}
