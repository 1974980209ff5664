// socketlatency: how long data waits at the socket, per namespace (direction 0 read, 1 write).
// read: from sock:sk_data_ready (data queued and the reader woken; the first wake-up since the
//   socket was last read) to sock:sock_recv_length returning data to the application.
// write: from syscalls:sys_enter_sendto / sys_enter_sendmsg (the application hands data over)
//   to sock:sock_send_length (sendmsg returns: the data is queued or sent), per thread;
//   includes blocking for send-buffer space. write(2) on a socket has no start point here.
READY_ARGS_STRUCT
RECV_ARGS_STRUCT
SEND_ARGS_STRUCT
DESTROY_ARGS_STRUCT

BPF_TABLE("lru_hash", u64, u64, ready_at, 65536);  // socket -> first unread wake-up (ns)
// thread -> send syscall entry (ns); deleted at sock_send_length. A plain hash: an LRU update
// per send syscall measured ~400 ns here (BENCHMARKS.md); a full map is counted in lost.
BPF_HASH(send_at, u64, u64, 16384);

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
        observe(netns_of_sock(sk), 0, delta);
    return 0;
}

// A TCP socket destroyed with unread data must not leave its wake-up to the next socket at
// the same address (UDP sockets have no such tracepoint: the LRU evicts theirs).
int sl_destroy(struct destroy_args *args) {
    u64 sk = (u64)args->skaddr;
    ready_at.delete(&sk);
    return 0;
}

int sl_send_enter(void *args) {
    u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
    if (send_at.update(&id, &now) != 0) count_lost();
    return 0;
}

int sl_send_length(struct send_args *args) {
    u64 id = bpf_get_current_pid_tgid();
    u64 *t = send_at.lookup(&id);
    if (!t)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *t;
    send_at.delete(&id);
    if ((int)args->ret > 0)
        observe(netns_of_sock((u64)args->sk), 1, delta);
    return 0;
}
