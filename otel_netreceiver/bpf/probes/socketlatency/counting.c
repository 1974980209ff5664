// socketlatency: how long data waits at the socket, per namespace (direction 0 read, 1 write).
// read: from sock:sk_data_ready (data queued and the reader woken; the first wake-up since the
//   socket was last read) to sock:sock_recv_length returning data to the application.
// write: from syscalls:sys_enter_sendto / sys_enter_sendmsg (the application hands data over)
//   until the socket's first skb after it reaches net:net_dev_queue (the data left the socket
//   for the device layer). A send whose data leaves during the call (UDP, TCP with window)
//   is measured to that skb; one that only queued it (TCP: zero window, cwnd, Nagle, TSQ)
//   waits in write_pending until the socket's next skb is queued, which may be a pure ACK.
//   Includes blocking for send-buffer space. write(2) on a socket has no start point here.
READY_ARGS_STRUCT
RECV_ARGS_STRUCT
SEND_ARGS_STRUCT
DESTROY_ARGS_STRUCT
QUEUE_ARGS_STRUCT

BPF_TABLE("lru_hash", u64, u64, ready_at, 65536);  // socket -> first unread wake-up (ns)
// thread -> send syscall entry (ns); deleted at sock_send_length. A plain hash: an LRU update
// per send syscall measured ~400 ns here (BENCHMARKS.md); a full map is counted in lost.
struct send_state { u64 start; u64 left_at; u64 left_sk; };
BPF_HASH(send_at, u64, struct send_state, 16384);
BPF_TABLE("lru_hash", u64, u64, write_pending, 65536);  // socket -> oldest unsent send (ns)

int sl_data_ready(struct ready_args *args) {
    u64 sk = (u64)args->skaddr, now = bpf_ktime_get_ns();
    ready_at.insert(&sk, &now);  // BPF_NOEXIST: the oldest unread wake-up is kept
    return 0;
}

int sl_recv_length(struct recv_args *args) {
    if (args->flags & 2)  // MSG_PEEK: the data stays queued, keep waiting
        return 0;
    u64 sk = (u64)args->sk;
    u64 *t = ready_at.lookup(&sk);
    if (!t)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *t;
    ready_at.delete(&sk);  // also on EOF (0) and errors: a freed socket's address is reused
    if ((int)args->ret > 0)  // rendered as u32: the field is an int
        observe(netns_key_of_sock(sk), 0, delta);
    return 0;
}

// A TCP socket destroyed with unread (or unsent) data must not leave its wake-up (or pending
// send) to the next socket at the same address (UDP has no such tracepoint: the LRU evicts).
int sl_destroy(struct destroy_args *args) {
    u64 sk = (u64)args->skaddr;
    ready_at.delete(&sk);
    write_pending.delete(&sk);
    return 0;
}

int sl_send_enter(void *args) {
    u64 id = bpf_get_current_pid_tgid();
    struct send_state state = {bpf_ktime_get_ns(), 0, 0};
    if (send_at.update(&id, &state) != 0) count_lost();
    return 0;
}

int sl_queue(struct queue_args *args) {
    u64 sk = 0, now = bpf_ktime_get_ns(), id = bpf_get_current_pid_tgid();
    bpf_probe_read_kernel(&sk, sizeof(sk), (void *)((u64)args->skbaddr + OFF_SKB_SK));
    if (!sk)  // forwarded or socketless
        return 0;
    u64 *waiting = write_pending.lookup(&sk);
    if (waiting) {
        u64 delta = now - *waiting;
        write_pending.delete(&sk);
        observe(netns_key_of_sock(sk), 1, delta);
    }
    struct send_state *state = send_at.lookup(&id);
    if (state && !state->left_at) {  // the first skb queued inside this thread's send call
        state->left_at = now;
        state->left_sk = sk;
    }
    return 0;
}

int sl_send_length(struct send_args *args) {
    u64 id = bpf_get_current_pid_tgid(), sk = (u64)args->sk;
    struct send_state *state = send_at.lookup(&id);
    if (!state)
        return 0;
    struct send_state s = *state;
    send_at.delete(&id);
    if ((int)args->ret <= 0)
        return 0;
    if (s.left_at && s.left_sk == sk)  // its data left during the call
        observe(netns_key_of_sock(sk), 1, s.left_at - s.start);
    else  // queued only: the socket's next skb at the device ends the wait
        write_pending.insert(&sk, &s.start);
    return 0;
}
