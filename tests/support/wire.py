"""A "wire" between a test pod and the node that delays, reorders and loses frames.

This kernel has no netem qdisc, so the path faults of the latency-jitter and packet-loss
playbooks (docs/background.md, "Sources") are made in user space: the pod's veth no longer
reaches the node directly but a third network namespace, the wire, which holds two veth
ends and no addresses::

    pod netns: eth0  <->  wire netns: w0 ~relay~ w1  <->  node: <pod.host_veth>

The relay reads every frame received on w0 and w1 from an AF_PACKET raw socket (frames the
relay itself sent show up as PACKET_OUTGOING and are ignored, or they would loop), and
writes it unchanged out of the other end after ``delay`` plus a uniform draw in
``±jitter`` (a heapq of due times, so a jitter larger than the gap between two frames
reorders them), or drops it with probability ``loss``. Both directions see the same fault.
The wire is transparent at layer 2: the pod and the node still ARP for each other.

Loss is a seeded draw per TCP segment, not per frame in arrival order: the draw hashes the
segment's place in its connection (the connection's order of arrival, its direction, the
sequence and acknowledgement numbers relative to the initial ones, the payload length and
flags, and which copy of that segment it is), so the same traffic loses the same segments
in every run. A draw in arrival order lost different segments each run (whether a delayed
ACK went out before or after a data segment shifts every later draw): in ten runs of the
loss test's lossy traffic (2 connections, 4 s, 20 %) the client completed 22 to 59 requests
and counted 7 to 15 retransmission timeouts (the rule reading them wants more than 2).
Drawn per segment: 43 requests and 7 timeouts in each of ten runs, idle or with two busy
processes on the two cores. Frames that are not TCP over IPv4
(ARP) are never dropped: a lost ARP reply stalls the pod for a second, which is no part of
a lossy path beyond the node.

Frames must fit the veth MTU as they are, so segmentation and checksum offloads are turned
off on the pod's eth0 and the node's veth: an AF_PACKET reader gets a GSO super-frame or a
frame whose checksum was left to hardware, and writing it back out would be refused
(EMSGSIZE) or arrive with a wrong checksum.

The relay runs as its own process inside the wire namespace (``python -m tests.support.wire
relay ...``) so the test process' threads (an agent) cannot hold it back; it prints what it
did on exit, parsed into ``RelayStats``. A fault is applied with ``Wire.inject`` and lasts
for the ``with`` block; outside of it the relay copies frames without delay or loss, so a
clean run goes through the same path.

To show a fault is faithful, the module also has the traffic (a request/response server
and client run with ``python -c`` in the pods) and the kernel's own account of it: nstat
deltas in pods and in the node, smoothed RTTs from `ss -ti`, nftables rule counters.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from tests.support.pods import Pod, _die_with_parent, in_ns, run

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # linux/if_packet.h: a frame this host sent, seen by a packet tap
FRAME_MAX = 65536
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Fault:
    """What the wire does to each frame: hold it ``delay`` ± ``jitter`` seconds (uniform),
    or drop it with probability ``loss`` (a draw per TCP segment keyed by ``seed``)."""

    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.delay < 0 or self.jitter < 0:
            raise ValueError(f"delay and jitter must be >= 0 s, got {self.delay}, {self.jitter}")
        if self.jitter > self.delay:
            raise ValueError(f"jitter {self.jitter} s exceeds delay {self.delay} s: a frame "
                             "cannot leave before it arrived")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss must be a fraction in [0, 1), got {self.loss}")


@dataclass(frozen=True, slots=True)
class RelayStats:
    """What the relay did: frames seen, dropped, sent, and sent after a later frame of the
    same direction (``reordered``); ``send_errors`` are frames the kernel refused."""

    seen: int
    dropped: int
    sent: int
    reordered: int
    send_errors: int


def parse_stats(text: str) -> RelayStats:
    """The relay's last output line → RelayStats; a clear error for anything else."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the relay printed no statistics (did it crash? see its stderr)")
    try:
        doc = json.loads(lines[-1])
        return RelayStats(**{f.name: int(doc[f.name]) for f in fields(RelayStats)})
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"relay statistics {lines[-1]!r}: {exc}") from None


TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


def _tcp(frame: bytes) -> tuple[tuple[bytes, int, bytes, int], int, int, int, int] | None:
    """An Ethernet frame's TCP/IPv4 header: (flow, seq, ack, flags, payload length); None
    for anything else."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    total = int.from_bytes(frame[16:18], "big")
    sport, dport, seq, ack, offset, flags = struct.unpack_from("!HHIIBB", frame, 14 + ihl)
    flow = (frame[26:30], sport, frame[30:34], dport)
    return flow, seq, ack, flags, total - ihl - (offset >> 4) * 4


@dataclass
class Segments:
    """Each TCP segment's place in its connection, independent of ports, initial sequence
    numbers and arrival timing, and the seeded loss draw made from it."""

    # a direction of a connection -> (the connection's ordinal, its initial sequence number,
    # whether it is the client's: the one whose SYN opened it)
    flows: dict[tuple, tuple[int, int, bool]] = field(default_factory=dict)
    copies: dict[tuple, int] = field(default_factory=dict)
    connections: int = 0

    def place(self, frame: bytes) -> tuple | None:
        """(connection ordinal, client's direction?, relative seq, relative ack, payload
        length, SYN/FIN/RST flags, which copy); None for a frame of no connection seen
        opening (or no TCP)."""
        tcp = _tcp(frame)
        if tcp is None:
            return None
        flow, seq, ack, flags, length = tcp
        back = (flow[2], flow[3], flow[0], flow[1])
        if flags & TCP_SYN and flow not in self.flows:
            if not flags & TCP_ACK:
                self.flows[flow] = (self.connections, seq, True)
                self.connections += 1
            elif back in self.flows:
                self.flows[flow] = (self.flows[back][0], seq, False)
        if flow not in self.flows:
            return None
        ordinal, isn, client = self.flows[flow]
        peer_isn = self.flows[back][1] if flags & TCP_ACK and back in self.flows else ack
        key = (ordinal, client, (seq - isn) % 2**32, (ack - peer_isn) % 2**32, length,
               flags & (TCP_SYN | TCP_FIN | TCP_RST))
        self.copies[key] = self.copies.get(key, -1) + 1
        return (*key, self.copies[key])

    def draw(self, frame: bytes, seed: int) -> float:
        """A uniform number in [0, 1) fixed by ``seed`` and the segment's place; 1.0 (never
        dropped) for frames that are not a known connection's."""
        place = self.place(frame)
        if place is None:
            return 1.0
        digest = hashlib.blake2b(repr((seed, place)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64


@dataclass
class _Relay:
    """The relay's state in its own process: two sockets, the held frames, the counters."""

    sockets: tuple[socket.socket, socket.socket]
    fault: Fault
    held: list[tuple[float, int, int, bytes]] = field(default_factory=list)
    sent_seq: list[int] = field(default_factory=lambda: [-1, -1])
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        (f.name for f in fields(RelayStats)), 0))
    seq: int = 0
    segments: Segments = field(default_factory=lambda: Segments())

    def take(self, side: int, rng: random.Random) -> None:
        """Read every frame waiting on ``side`` and hold (or drop) it for the other side."""
        while True:
            try:
                frame, address = self.sockets[side].recvfrom(FRAME_MAX)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue
            self.counts["seen"] += 1
            if self.fault.loss and self.segments.draw(frame, self.fault.seed) < self.fault.loss:
                self.counts["dropped"] += 1
                continue
            hold = self.fault.delay + rng.uniform(-self.fault.jitter, self.fault.jitter)
            heapq.heappush(self.held, (time.monotonic() + hold, self.seq, 1 - side, frame))
            self.seq += 1

    def send_due(self, now: float) -> None:
        while self.held and self.held[0][0] <= now:
            _, seq, side, frame = heapq.heappop(self.held)
            # seq numbers interleave both directions; reordering is within one direction
            if seq < self.sent_seq[side]:
                self.counts["reordered"] += 1
            self.sent_seq[side] = max(self.sent_seq[side], seq)
            try:
                self.sockets[side].send(frame)
                self.counts["sent"] += 1
            except OSError:
                self.counts["send_errors"] += 1


def _packet_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((interface, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def _schedule_first() -> None:
    """Run the relay ahead of every ordinary process: a clean wire must add no delay of its
    own. A sender's tail loss probe fires 2 srtt after its last segment, at least 2 jiffies
    (tcp_schedule_loss_probe, net/ipv4/tcp_output.c): a veth's srtt is tens of microseconds,
    so a relay that waits a few milliseconds for a CPU makes the probe fire on a clean path
    and come back DSACKed, which is what a delaying path looks like. At nice -10 that still
    happened with two busy processes on the two cores (a clean run said
    path_delay_or_reordering); a real-time relay is woken at once. It sleeps in select
    between frames, and the kernel's real-time throttling (sched_rt_runtime_us) bounds it."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):  # no CAP_SYS_NICE or RT group budget: the best we may
        os.nice(-10)


def relay(first: str, second: str, fault: Fault) -> RelayStats:
    """Copy frames between two interfaces with ``fault`` until SIGTERM; held frames are
    sent at once on stop (a fault ends with its ``with`` block, not with lost frames)."""
    stopping: list[int] = []
    _schedule_first()
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    state = _Relay((_packet_socket(first), _packet_socket(second)), fault)
    rng = random.Random(fault.seed)
    print("ready", flush=True)
    while not stopping:
        wait = 0.2 if not state.held else max(0.0, min(0.2, state.held[0][0] - time.monotonic()))
        try:
            readable, _, _ = select.select(state.sockets, [], [], wait)
        except InterruptedError:
            continue
        for sock in readable:
            state.take(state.sockets.index(sock), rng)
        state.send_due(time.monotonic())
    state.send_due(float("inf"))
    return RelayStats(**state.counts)


class Wire:
    """A wire namespace spliced between ``pod`` and the node (see the module docstring)."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        self.netns = f"onrwire{os.getpid() % 1000}x{pod.index}"
        self._relay: subprocess.Popen | None = None

    def splice(self) -> None:
        """pod eth0 <-> w0 (the pod's old node end, moved and renamed) ~ w1 <-> a new node
        end with the old name, address and forwarding setting."""
        pod, ns = self.pod, self.netns
        forwarding = run("sysctl", "-n", f"net.ipv4.conf.{pod.host_veth}.forwarding").stdout
        run("ip", "netns", "add", ns)
        in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1",
              "net.ipv6.conf.all.disable_ipv6=1")
        run("ip", "link", "set", pod.host_veth, "netns", ns)
        in_ns(ns, "ip", "link", "set", pod.host_veth, "name", "w0")
        run("ip", "link", "add", pod.host_veth, "type", "veth", "peer", "name", "w1",
            "netns", ns)
        run("sysctl", "-qw", f"net.ipv6.conf.{pod.host_veth}.disable_ipv6=1",
            f"net.ipv4.conf.{pod.host_veth}.forwarding={forwarding.strip()}")
        run("ip", "addr", "add", f"{pod.host_ip}/30", "dev", pod.host_veth)
        for end in ("w0", "w1"):
            in_ns(ns, "ip", "link", "set", end, "up")
        run("ip", "link", "set", pod.host_veth, "up")
        run("ethtool", "-K", pod.host_veth, "tx", "off", "tso", "off", "gso", "off")
        pod.exec("ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off")

    def start(self, fault: Fault) -> None:
        self._relay = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-m", "tests.support.wire",
             "relay", "w0", "w1", "--delay", str(fault.delay), "--jitter", str(fault.jitter),
             "--loss", str(fault.loss), "--seed", str(fault.seed)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=os.environ | {"PYTHONPATH": str(REPO)}, preexec_fn=_die_with_parent)
        assert self._relay.stdout is not None
        line = self._relay.stdout.readline().strip()
        if line != "ready":
            err = self._relay.communicate(timeout=10)[1]
            raise RuntimeError(f"the relay in {self.netns} did not start: {err[-2000:]}")

    def stop(self) -> RelayStats:
        if self._relay is None:
            raise RuntimeError("the relay is not running")
        relay_proc, self._relay = self._relay, None
        relay_proc.send_signal(signal.SIGTERM)
        out, err = relay_proc.communicate(timeout=10)
        if relay_proc.returncode:
            raise RuntimeError(f"the relay exited with {relay_proc.returncode}: {err[-2000:]}")
        return parse_stats(out)

    @contextlib.contextmanager
    def inject(self, fault: Fault) -> Iterator[list[RelayStats]]:
        """Apply ``fault`` for the block; the list it yields gets the relay's statistics
        for the block when it ends. The wire is back to a plain copy afterwards."""
        stats: list[RelayStats] = []
        self.stop()
        self.start(fault)
        try:
            yield stats
        finally:
            stats.append(self.stop())
            self.start(Fault())

    def remove(self) -> None:
        """Stop the relay and delete the wire namespace (w0 and w1 go with it, and so do
        their peers: the pod's eth0 and the node end; the pod is left unlinked)."""
        if self._relay is not None:
            self._relay.kill()
            self._relay.wait()
            self._relay = None
        run("ip", "netns", "del", self.netns, check=False)
        run("ip", "link", "del", self.pod.host_veth, check=False)


@contextlib.contextmanager
def wired(pod: Pod) -> Iterator[Wire]:
    """``pod`` behind a wire that copies frames unchanged until a fault is injected."""
    wire = Wire(pod)
    try:
        wire.splice()
        wire.start(Fault())
        yield wire
    finally:
        wire.remove()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tests.support.wire")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("relay", help="copy frames between two interfaces, with a fault")
    cmd.add_argument("first")
    cmd.add_argument("second")
    for name in ("delay", "jitter", "loss"):
        cmd.add_argument(f"--{name}", type=float, default=0.0)
    cmd.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        fault = Fault(args.delay, args.jitter, args.loss, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    stats = relay(args.first, args.second, fault)
    print(json.dumps({f.name: getattr(stats, f.name) for f in fields(RelayStats)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
