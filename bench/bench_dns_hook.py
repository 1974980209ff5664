"""Where the dns probe hooks in: the workload's cost per packet of each choice, and of a DNS query.

The dns probe must see every packet of every pod to find the DNS ones, so its invocation is
paid per packet. Two hooks were candidates on this kernel (no kprobes, no fentry):
- raw tracepoints on net:net_dev_queue and net:netif_receive_skb, filtering on the ports
  read with two bpf_probe_read_kernel calls (the skb's header offsets, then the IP and UDP
  headers); they fire at every hop (a pod's packet: its eth0, the node's veth, the node's
  egress), and in the node's namespace for forwarded packets too;
- cgroup_skb on the cgroup v2 root (inet egress and ingress), filtering with direct packet
  access; it runs once at the sending socket and once at the receiving one, never for a
  forwarded packet.
Each is measured empty and with the port filter, on the loopback workloads of
bench_workload.py (a UDP flood to a closed port and a UDP ping-pong), as the thread's CPU
time per operation in alternating rounds without/with (median of paired differences). The
last rows load the real probe (collectors/ebpf.py with probes=[dns]) and add a DNS
ping-pong: a query to a server on 127.0.0.1:53 and its answer, through the whole matching
path (pending entry created, matched, deleted, latency observed).

    sudo flock /tmp/onr-kernel.lock .venv/bin/python bench/bench_dns_hook.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
from collections.abc import Callable
from pathlib import Path

import benchpath  # noqa: F401  (the checkout on sys.path: tests.support, bench.*)

from bench.bench_workload import udp_flood, udp_pingpong, us_per_op

TEXT = r"""
#include <uapi/linux/bpf.h>
BPF_PERCPU_ARRAY(hits, u64, 2);
struct skbwin { u16 protocol; u16 th; u16 nh; u16 mh; u32 tail; u32 end; u64 head; };
static __always_inline void hit(u32 k) { u64 *v = hits.lookup(&k); if (v) (*v)++; }
int raw_empty(struct bpf_raw_tracepoint_args *ctx) { return 0; }
int raw_ports(struct bpf_raw_tracepoint_args *ctx) {
    struct skbwin w = {};
    u8 h[28] = {};
    if (bpf_probe_read_kernel(&w, sizeof(w), (void *)(ctx->args[0] + OFF_PROTOCOL)))
        return 0;
    if (w.protocol != htons(0x0800) || bpf_probe_read_kernel(h, sizeof(h),
                                                             (void *)(w.head + w.nh)))
        return 0;
    if ((h[9] != 17 && h[9] != 6) || (h[0] & 0xf) != 5)
        return 0;
    if (((h[20] << 8) | h[21]) == 53 || ((h[22] << 8) | h[23]) == 53)
        hit(0);
    return 0;
}
int cg_empty(struct __sk_buff *skb) { return 1; }
int cg_ports(struct __sk_buff *skb) {
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    u8 *h = data;
    if (data + 24 > end || h[0] >> 4 != 4 || (h[9] != 17 && h[9] != 6) || (h[0] & 0xf) != 5)
        return 1;
    if (((h[20] << 8) | h[21]) == 53 || ((h[22] << 8) | h[23]) == 53)
        hit(1);
    return 1;
}
"""
TRACEPOINTS = (b"net_dev_queue", b"netif_receive_skb")
QUERY = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x07example\x03com\x00" \
    + struct.pack("!HH", 1, 1)


def dns_pingpong(ops: int) -> None:
    """A client asks 127.0.0.1:53 (a socket in this thread) and reads the answer."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.connect(("127.0.0.1", 53))
    for i in range(ops):
        query = struct.pack("!H", i & 0xFFFF) + QUERY[2:]
        client.send(query)
        packet, peer = server.recvfrom(512)
        server.sendto(packet[:2] + b"\x81\x80" + packet[4:], peer)
        client.recv(512)
    client.close()
    server.close()


WORKLOADS: dict[str, tuple[Callable[[int], None], int]] = {
    "udp_flood": (udp_flood, 100_000), "udp_pingpong": (udp_pingpong, 30_000),
    "dns_pingpong": (dns_pingpong, 20_000)}


def paired(attach: Callable[[bool], None], run: Callable[[int], None], ops: int,
           rounds: int) -> tuple[float, float]:
    without, with_ = [us_per_op(run, ops)], []
    for _ in range(rounds):
        attach(True)
        try:
            with_.append(us_per_op(run, ops))
        finally:
            attach(False)
        without.append(us_per_op(run, ops))
    deltas = [w - (without[i] + without[i + 1]) / 2 for i, w in enumerate(with_)]
    return statistics.median(without), statistics.median(deltas)


def hooks(fds: dict[str, int] | None = None) -> dict[str, Callable[[bool], None]]:
    """Each variant's attach/detach switch, by label; ``fds`` gets each variant's program fd
    (bench_dns_tchook.py reads their statistics)."""
    from bcc import BPF, BPFAttachType

    from otel_netreceiver.bpf.btf import Btf

    offset = Btf.load().offset("sk_buff", "protocol")
    bpf = BPF(text=f"#define OFF_PROTOCOL {offset}\n{TEXT}".encode())
    raw = {name: bpf.load_func(name.encode(), BPF.RAW_TRACEPOINT)
           for name in ("raw_empty", "raw_ports")}
    cg = {name: bpf.load_func(name.encode(), BPF.CGROUP_SKB) for name in ("cg_empty", "cg_ports")}
    root = os.open("/sys/fs/cgroup/unified", os.O_RDONLY)
    kinds = (BPFAttachType.CGROUP_INET_EGRESS, BPFAttachType.CGROUP_INET_INGRESS)

    def tracepoints(name: str) -> Callable[[bool], None]:
        def attach(on: bool) -> None:
            for tp in TRACEPOINTS:
                if on:
                    bpf.attach_raw_tracepoint(tp=tp, fn_name=raw[name].name)
                else:
                    bpf.detach_raw_tracepoint(tp=tp)
        return attach

    def cgroup(name: str) -> Callable[[bool], None]:
        def attach(on: bool) -> None:
            for kind in kinds:
                if on:
                    BPF.attach_func(cg[name], root, kind, flags=2)  # BPF_F_ALLOW_MULTI
                else:
                    BPF.detach_func(cg[name], root, kind)
        return attach

    if fds is not None:
        fds.update({"raw tracepoints, empty": raw["raw_empty"].fd,
                    "raw tracepoints, port filter": raw["raw_ports"].fd,
                    "cgroup_skb, empty": cg["cg_empty"].fd,
                    "cgroup_skb, port filter": cg["cg_ports"].fd})
    return {"raw tracepoints, empty": tracepoints("raw_empty"),
            "raw tracepoints, port filter": tracepoints("raw_ports"),
            "cgroup_skb, empty": cgroup("cg_empty"),
            "cgroup_skb, port filter": cgroup("cg_ports")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    from otel_netreceiver.collectors.ebpf import EbpfCollector
    from otel_netreceiver.config.schema import EbpfConfig
    from otel_netreceiver.k8s.directory import NoPods

    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")
    choices = hooks()
    collector = EbpfCollector(EbpfConfig(probes=["dns"]), "/proc", NoPods())
    probe = collector._loaded["dns"]

    def whole_probe(on: bool) -> None:  # the socket hooks and the NO_SOCKET program
        probe.socket_hooks(on)
        if on:
            probe.attach_tracepoint(tp=b"skb:kfree_skb", fn_name=b"dns_no_socket")
        else:
            probe.detach_tracepoint(b"skb:kfree_skb")

    whole_probe(False)
    choices["the dns probe (collectors.ebpf)"] = whole_probe
    try:
        print(f"{'hook':<34} {'workload':<13} {'without us/op':>13} {'delta ns/op':>11} "
              f"{'overhead':>8}")
        for label, attach in choices.items():
            for workload, (run, ops) in WORKLOADS.items():
                if workload == "dns_pingpong" and "dns probe" not in label:
                    continue
                base, delta = paired(attach, run, ops, args.rounds)
                print(f"{label:<34} {workload:<13} {base:>13.3f} {delta * 1e3:>+11.0f} "
                      f"{delta / base:>+8.1%}")
    finally:
        collector.close()
    print(f"loadavg {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
