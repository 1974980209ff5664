"""socketlatency, kernellatency, tcptwrcv and virtcmdlatency on this kernel, with real traffic.

A test pod runs a loopback TCP pair whose reader sleeps before each read, so data provably
waits at the socket (socketlatency receive must see it; kernellatency, which ends when the
reader is woken, must not). TIME_WAIT segments are made by reconnecting from the same port
after the server closed first, and counted independently by bpftrace from BTF.

Per-pod maps are keyed by the namespace cookie, so the order of this module and
test_ebpf_probes.py does not matter (namespaces freed here may hand their inode numbers to
that module's pods; tests/integration/test_ebpf_netns_reuse.py shows it is harmless).
"""

from __future__ import annotations

import subprocess
import time

import pytest

from otel_netreceiver.bpf.btf import Btf
from otel_netreceiver.bpf.fentry import function_hook_reason
from otel_netreceiver.bpf.probes import PROBES
from otel_netreceiver.bpf.programs import kernel_offsets, render
from otel_netreceiver.collectors.ebpf import EbpfCollector
from otel_netreceiver.config.schema import EbpfConfig
from otel_netreceiver.k8s.directory import NoPods
from otel_netreceiver.model import Collection
from tests.integration.test_ebpf_probes import REASON, _inode, _wait_for_line
from tests.support.pods import Pod, pod_pair
from tests.support.tools import require_tool, stop_bpftrace

pytestmark = pytest.mark.root
if REASON:
    pytest.skip(REASON, allow_module_level=True)

NEW = ["socketlatency", "kernellatency", "tcptwrcv"]
SLEEPY_READER = """
import socket, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
for _ in range(4):
    c.send(b"x" * 200)
    time.sleep(0.2)  # the data waits in a's receive queue
    assert a.recv(1000)
"""
ZERO_WINDOW = """
import socket, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
srv.bind(("127.0.0.1", 0)); srv.listen()
c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
c.connect(srv.getsockname()); a, _ = srv.accept()
c.setblocking(False)
sent = 0
try:
    while True:  # fill the peer's window, then the send buffer: the last sends only queue
        sent += c.send(b"x" * 1024)
except BlockingIOError:
    pass
time.sleep(0.4)  # the queued data waits behind a zero window
a.setblocking(False)
got = 0
deadline = time.time() + 5
while got < sent and time.time() < deadline:
    try:
        got += len(a.recv(65536))
    except BlockingIOError:
        time.sleep(0.01)
assert got == sent, (got, sent)
"""
TIME_WAIT = """
import socket
def client():
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("127.0.0.1", 7101)); return c
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 7100)); srv.listen()
for _ in range(3):
    c = client(); c.connect(("127.0.0.1", 7100)); a, _ = srv.accept()
    a.close(); c.recv(1); c.close()  # the server closed first: its side is in TIME_WAIT
srv.close()
c = client(); c.settimeout(0.5)
try: c.connect(("127.0.0.1", 7100))  # SYN to the TIME_WAIT socket, no listener left
except OSError: pass
"""


@pytest.fixture(scope="module")
def collector():
    c = EbpfCollector(EbpfConfig(probes=NEW), "/proc", NoPods())
    assert c.statuses() == dict.fromkeys(NEW, ""), c.statuses()
    yield c
    c.close()


@pytest.fixture
def pods():
    with pod_pair(41) as made:
        yield made


def _hist(collection: Collection, name: str, pod: Pod, direction: str):  # type: ignore[no-untyped-def]
    for point in collection.points:
        a = dict(point.attributes)
        if (point.metric.name == name and a.get("k8s.pod.uid") == pod.uid
                and a.get("network.io.direction") == direction):
            return point.value
    return None


def _count(collection: Collection, name: str, pod: Pod, direction: str) -> tuple[int, float]:
    value = _hist(collection, name, pod, direction)
    return (value.count, value.sum) if value is not None else (0, 0.0)


def _delta(before: Collection, after: Collection, name: str, pod: Pod,
           direction: str) -> tuple[int, float]:
    (n0, s0), (n1, s1) = (_count(before, name, pod, direction),
                          _count(after, name, pod, direction))
    return n1 - n0, s1 - s0


def test_socket_wait_is_seen_by_socketlatency_and_not_by_kernellatency(collector, pods) -> None:
    a, b = pods
    before = collector.collect()
    a.exec("python3", "-c", SLEEPY_READER)
    after = collector.collect()
    reads, read_s = _delta(before, after, "netreceiver.pod.socket.latency", a, "receive")
    assert reads >= 4 and read_s >= 4 * 0.19  # each read found data ~0.2 s old
    hist = _hist(after, "netreceiver.pod.socket.latency", a, "receive")
    lower_bounds = (0.0, *hist.bounds)
    slow = sum(c for bound, c in zip(lower_bounds, hist.bucket_counts, strict=True)
               if bound >= 0.1)
    assert slow >= 4  # in the buckets above 2^27 ns (0.134 s), not just in the sum
    sends, send_s = _delta(before, after, "netreceiver.pod.socket.latency", a, "transmit")
    assert sends >= 4 and 0 < send_s / sends < 0.05  # sendto returns at once
    rx, rx_s = _delta(before, after, "netreceiver.pod.kernel.latency", a, "receive")
    tx, tx_s = _delta(before, after, "netreceiver.pod.kernel.latency", a, "transmit")
    assert rx >= 4 and 0 < rx_s / rx < 0.01  # the stack, not the 0.2 s the data waited
    assert tx >= 4 and 0 < tx_s / tx < 0.01
    for name in ("netreceiver.pod.socket.latency", "netreceiver.pod.kernel.latency"):
        assert _delta(before, after, name, b, "receive")[0] == 0  # the other pod was idle


def test_data_queued_behind_a_zero_window_waits_until_it_leaves(collector, pods) -> None:
    a, _ = pods
    before = collector.collect()
    a.exec("python3", "-c", ZERO_WINDOW)
    after = collector.collect()
    hist = _hist(after, "netreceiver.pod.socket.latency", a, "transmit")
    old = _hist(before, "netreceiver.pod.socket.latency", a, "transmit")
    base = old.bucket_counts if old else (0,) * len(hist.bucket_counts)
    new = [c - b for c, b in zip(hist.bucket_counts, base, strict=True)]
    lower_bounds = (0.0, *hist.bounds)
    waited = sum(c for bound, c in zip(lower_bounds, new, strict=True) if bound >= 0.016)
    # Queued data leaves when the window reopens: the receiver's window update (~40 ms here),
    # the zero-window probe (>= 200 ms) or the reader (400 ms); sends that left at once take
    # microseconds. Both kinds must be there.
    assert waited >= 1, new
    assert sum(new) - waited >= 1, new


def _bpftrace_tw(inode: int, workload) -> int:  # type: ignore[no-untyped-def]
    script = ("tracepoint:skb:kfree_skb /args->rx_sk != 0/ { $s = (struct sock *)args->rx_sk; "
              "if ($s->__sk_common.skc_state == 6 && "
              f"$s->__sk_common.skc_net.net->ns.inum == {inode}) {{ @tw = count(); }} }}"
              " BEGIN { printf(\"ready\\n\"); }")
    proc = subprocess.Popen([require_tool("bpftrace"), "-B", "line", "-e", script],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        _wait_for_line(proc, "ready", deadline=time.monotonic() + 150)  # slow on a busy VM
        workload()
        time.sleep(0.3)
    finally:
        out = stop_bpftrace(proc)
    return sum(int(line.split(": ")[1]) for line in out.splitlines() if line.startswith("@tw"))


def test_segments_to_time_wait_sockets_agree_with_bpftrace(collector, pods) -> None:
    a, b = pods

    def total(c: Collection, pod: Pod) -> int:
        return sum(p.value for p in c.points  # type: ignore[misc]
                   if p.metric.name == "netreceiver.pod.tcp.timewait_segments"
                   and dict(p.attributes).get("k8s.pod.uid") == pod.uid)

    before = collector.collect()
    independent = _bpftrace_tw(_inode(a), lambda: a.exec("python3", "-c", TIME_WAIT))
    after = collector.collect()
    ours = total(after, a) - total(before, a)
    assert ours >= 1  # at least the SYN that met the TIME_WAIT socket
    assert ours == independent
    assert total(after, b) == total(before, b) == 0


def _compiles_until_the_kernel_refuses(function: str) -> None:
    """The C is still checked here: bcc compiles it, and only the kernel's load refuses."""
    from bcc import BPF

    text = render(PROBES["virtcmdlatency"], {}, kernel_offsets(Btf.load()), function)
    with pytest.raises(Exception) as refused:
        BPF(text=text.encode())
    assert "compile" not in str(refused.value).lower(), refused.value


def test_virtcmdlatency_loads_where_fentry_works_else_says_why() -> None:
    c = EbpfCollector(EbpfConfig(probes=["virtcmdlatency"]), "/proc", NoPods())
    try:
        function, reason = function_hook_reason(
            Btf.load(), ("virtnet_send_command_reply", "virtnet_send_command"))
        status = c.statuses()["virtcmdlatency"]
        if reason:  # this kind of kernel: the trial fentry load is refused
            assert status == reason and function in status
            assert c.collect().points == ()
            print(f"virtcmdlatency unavailable here: {reason}")
            _compiles_until_the_kernel_refuses(function)
        else:
            assert status == "", status
            assert function in ("virtnet_send_command_reply", "virtnet_send_command")
    finally:
        c.close()


def test_netiftxlat_measures_every_transmit_with_hashed_slots() -> None:
    """The array-slot variant must not lose samples on sequential traffic (no slot collisions):
    each of the pod's datagrams on lo is one queue -> xmit pair."""
    c = EbpfCollector(EbpfConfig(probes=["netiftxlat"], timing_sample=1), "/proc", NoPods())
    try:
        assert c.statuses() == {"netiftxlat": ""}

        def lo(collection: Collection):  # type: ignore[no-untyped-def]
            return next((p.value for p in collection.points
                         if dict(p.attributes).get("network.interface.name") == "lo"), None)

        with pod_pair(43) as (a, _):
            before = lo(c.collect())
            a.exec("python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,"
                   "socket.SOCK_DGRAM)\nfor _ in range(300): s.sendto(b'x', ('127.0.0.1', 9))")
            after = lo(c.collect())
        count0, sum0 = (before.count, before.sum) if before else (0, 0.0)
        assert after.count - count0 >= 300  # datagrams (plus ICMP errors) all measured
        assert 0 < (after.sum - sum0) / (after.count - count0) < 0.01
    finally:
        c.close()
