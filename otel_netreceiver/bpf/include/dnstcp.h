// DNS over TCP: length-prefixed messages, several per segment when a client pipelines
// (RFC 7766 6.2.1.1). Shared by the dns probe's counting and event programs.
// The offset of the message after the one whose length prefix is at `off`, or 0 when there
// is none to parse in this segment (prefix unreadable, not a message, header not in it).
static __always_inline u32 dns_tcp_after(struct __sk_buff *skb, u32 off) {
    u8 prefix[2];
    if (bpf_skb_load_bytes(skb, off, prefix, 2) != 0)
        return 0;
    u32 len = (prefix[0] << 8) | prefix[1], next = off + 2 + len;
    return len >= 12 && skb->len >= next + 14 ? next : 0;
}
