"""The per-pod collector on real namespaces, veths, processes and kubelet-named cgroups.

Every scenario makes the kernel move a counter in one test pod, then checks
that the collector attributes it to that pod (by UID from the cgroup) and that
the value equals what `nstat` reports from inside the same namespace.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from otel_netreceiver.collectors.podnet.collector import PodNetCollector
from otel_netreceiver.config.schema import PodNetConfig
from otel_netreceiver.k8s.directory import NoPods, PodMeta
from otel_netreceiver.model import Collection
from otel_netreceiver.procfs.snmp import parse_snmp
from tests.support.pods import (
    Pod,
    destroy_pod,
    kernel_supports_test_pods,
    move_to_pod,
    nstat,
    pod_pair,
)

pytestmark = pytest.mark.root

REASON = kernel_supports_test_pods()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

ALL_PROBES = ["netdev", "snmp", "netstat", "snmp6", "sockstat", "conntrack", "tcpsummary",
              "tcpqueues", "fd", "cpu"]


@pytest.fixture
def pods():
    with pod_pair(1) as made:
        yield made


class Directory:
    def __init__(self, pods: list[Pod]) -> None:
        self._meta = {p.uid: PodMeta(p.uid, f"app-{p.index}", "shop", p.pod_ip,
                                     (("app", f"app-{p.index}"),)) for p in pods}

    def get(self, uid: str) -> PodMeta | None:
        return self._meta.get(uid)


def _collect(pods: list[Pod], **config: object) -> Collection:
    cfg = PodNetConfig(probes=ALL_PROBES, **config)  # type: ignore[arg-type]
    return PodNetCollector(cfg, "/proc", Directory(pods)).collect()


def _value(collection: Collection, pod: Pod, name: str, **extra: str) -> float:
    for point in collection.every_point():
        a = dict(point.attributes)
        if (point.metric.name == name and a.get("k8s.pod.uid") == pod.uid
                and all(a.get(k) == v for k, v in extra.items())):
            return point.value  # type: ignore[return-value]
    raise AssertionError(f"no {name} {extra} for pod {pod.uid}")


def test_namespaces_are_attributed_to_pods_by_cgroup_for_both_drivers(pods) -> None:
    collection = _collect(pods)
    assert collection.errors == ()
    for pod in pods:
        points = [p for p in collection.every_point()
                  if dict(p.attributes).get("k8s.pod.uid") == pod.uid]
        assert points, f"{pod.driver} pod not found"
        labels = dict(points[0].attributes)
        assert labels["k8s.pod.name"] == f"app-{pod.index}"
        assert labels["k8s.namespace.name"] == "shop"
        assert labels["netns.kind"] == "pod"
    kinds = {dict(p.attributes)["netns.kind"]: p.value for p in collection.every_point()
             if p.metric.name == "netreceiver.netns.count"}
    assert kinds["pod"] >= 2 and kinds["host"] == 1


def test_without_kubernetes_metadata_the_uid_and_inode_identify_the_pod(pods) -> None:
    collection = PodNetCollector(PodNetConfig(), "/proc", NoPods()).collect()
    labels = next(dict(p.attributes) for p in collection.every_point()
                  if dict(p.attributes).get("k8s.pod.uid") == pods[0].uid)
    assert "k8s.pod.name" not in labels
    assert int(labels["netns.inode"]) > 0


def test_verbose_adds_pod_ip_and_chosen_labels(pods) -> None:
    collection = _collect(pods, verbose=True, labels=["app"])
    labels = next(dict(p.attributes) for p in collection.every_point()
                  if dict(p.attributes).get("k8s.pod.uid") == pods[0].uid)
    assert labels["k8s.pod.ip"] == pods[0].pod_ip
    assert labels["k8s.pod.label.app"] == "app-1"


def test_udp_to_a_closed_port_counts_no_ports_as_nstat_does(pods) -> None:
    pod = pods[0]
    pod.exec("python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             "for _ in range(7): s.sendto(b'x', ('127.0.0.1', 9))")
    collection, kernel = _collect(pods), nstat(pod)
    assert kernel["UdpNoPorts"] >= 7
    assert _value(collection, pod, "netreceiver.udp.no_ports") == kernel["UdpNoPorts"]
    assert _value(collection, pods[1], "netreceiver.udp.no_ports") == nstat(pods[1])["UdpNoPorts"]
    assert _value(collection, pods[1], "netreceiver.udp.no_ports") == 0  # the other pod: untouched


LISTEN_OVERFLOW = """
import socket, time
srv = socket.socket(); srv.bind(("127.0.0.1", 8080)); srv.listen(1)   # never accepts
clients = []
for _ in range(8):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(("127.0.0.1", 8080))
    except BlockingIOError: pass
    clients.append(c)
time.sleep(1.5)
"""


def test_listen_backlog_overflow_matches_nstat(pods) -> None:
    pod = pods[0]
    pod.exec("python3", "-c", LISTEN_OVERFLOW)
    collection, kernel = _collect(pods), nstat(pod)
    assert kernel["TcpExtListenOverflows"] > 0
    assert _value(collection, pod, "netreceiver.tcp.listen_overflows") == kernel[
        "TcpExtListenOverflows"]
    assert _value(collection, pod, "netreceiver.tcp.listen_drops") == kernel["TcpExtListenDrops"]


def test_connection_refused_sends_a_reset_counted_like_nstat(pods) -> None:
    pod = pods[1]
    pod.exec("python3", "-c", "import socket\nfor _ in range(3):\n    s = socket.socket()\n"
             "    try: s.connect(('127.0.0.1', 1))\n    except ConnectionRefusedError: pass")
    collection, kernel = _collect(pods), nstat(pod)
    assert kernel["TcpOutRsts"] >= 3
    assert _value(collection, pod, "netreceiver.tcp.out_rsts") == kernel["TcpOutRsts"]
    assert _value(collection, pod, "netreceiver.tcp.attempt_fails") == kernel["TcpAttemptFails"]


def test_bytes_and_packets_equal_the_namespaces_net_dev(pods) -> None:
    pod = pods[0]
    # three 1000-byte datagrams across the veth to the node side (answered by ICMP unreachable)
    pod.exec("python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
             f"for _ in range(3): s.sendto(b'x' * 1000, ('{pod.host_ip}', 9))")
    collection = _collect(pods)
    dev = pod.exec("cat", "/proc/net/dev").stdout
    eth0 = next(line for line in dev.splitlines() if line.strip().startswith("eth0:"))
    fields = [int(x) for x in eth0.split(":", 1)[1].split()]
    assert _value(collection, pod, "k8s.pod.network.io", **{
        "network.interface.name": "eth0", "network.io.direction": "transmit"}) == fields[8]
    assert _value(collection, pod, "k8s.pod.network.io", **{
        "network.interface.name": "eth0", "network.io.direction": "receive"}) == fields[0]
    assert fields[8] >= 3 * 1000
    assert _value(collection, pod, "netreceiver.pod.network.packets", **{
        "network.interface.name": "eth0", "network.io.direction": "receive"}) == fields[1]


HOLD_CONNECTIONS = """
import socket, time
srv = socket.socket(); srv.bind(("127.0.0.1", 9001)); srv.listen(8)
conns = [socket.create_connection(("127.0.0.1", 9001)) for _ in range(3)]
peers = [srv.accept()[0] for _ in range(3)]
conns[0].send(b"x" * 5000)   # never read: it waits in the peer's receive queue
time.sleep(5)
"""


def test_tcp_summary_and_queues_while_connections_are_open(pods) -> None:
    pod = pods[0]
    holder = subprocess.Popen(["ip", "netns", "exec", pod.netns, "python3", "-c",
                               HOLD_CONNECTIONS])
    try:
        time.sleep(1.0)
        collection = _collect(pods)
        snmp = parse_snmp(pod.exec("cat", "/proc/net/snmp").stdout)  # nstat skips gauges
    finally:
        holder.kill()
        holder.wait()
    established = {"tcp.state": "established"}
    assert _value(collection, pod, "netreceiver.tcp.connections", **established) == 6
    assert snmp["Tcp"]["CurrEstab"] == 6  # both ends of three loopback connections
    assert _value(collection, pod, "netreceiver.tcp.connections", **{"tcp.state": "listen"}) == 1
    received = {"network.io.direction": "receive"}
    assert _value(collection, pod, "netreceiver.tcp.queued", **received) == 5000
    tcp = {"network.transport": "tcp"}
    assert _value(collection, pod, "netreceiver.sockets.in_use", **tcp) >= 7


def test_cpu_throttling_of_the_pod_cgroup(pods) -> None:
    pod = pods[0]  # cgroupfs driver: cgroup v1 cpu controller, quota on the pod level
    (pod.pod_cgroup_dir() / "cpu.cfs_period_us").write_text("10000\n")
    (pod.pod_cgroup_dir() / "cpu.cfs_quota_us").write_text("1000\n")  # 10% of a CPU
    burner = subprocess.Popen(
        ["python3", "-c", "import time\nt=time.time()\nwhile time.time()-t<1.5: pass"])
    try:
        (pod.cgroup_dir() / "cgroup.procs").write_text(f"{burner.pid}\n")
        burner.wait(timeout=30)
    finally:
        burner.kill()
        (pod.pod_cgroup_dir() / "cpu.cfs_quota_us").write_text("-1\n")
    collection = _collect(pods)
    stat = dict(line.split() for line in (pod.pod_cgroup_dir() / "cpu.stat").read_text()
                .splitlines())
    throttled = _value(collection, pod, "netreceiver.pod.cpu.throttled_periods")
    assert throttled > 0
    assert throttled == int(stat["nr_throttled"])
    assert _value(collection, pod, "netreceiver.pod.cpu.throttled_time") == pytest.approx(
        int(stat["throttled_time"]) / 1e9)


def test_open_files_and_sockets_of_the_pod(pods) -> None:
    pod = pods[1]
    holder = subprocess.Popen(
        ["ip", "netns", "exec", pod.netns, "python3", "-c",
         "import socket, time\nss=[socket.socket() for _ in range(5)]\ntime.sleep(5)"])
    try:
        time.sleep(0.8)
        move_to_pod(pod, holder.pid)
        collection = _collect(pods)
    finally:
        holder.kill()
        holder.wait()
    assert _value(collection, pod, "netreceiver.pod.open_sockets") >= 5
    assert _value(collection, pod, "netreceiver.pod.open_files") >= 8


def test_a_destroyed_pod_is_gone_from_the_next_collection(pods) -> None:
    collector = PodNetCollector(PodNetConfig(), "/proc", Directory(pods))
    first = collector.collect()
    assert any(dict(p.attributes).get("k8s.pod.uid") == pods[1].uid for p in first.every_point())
    destroy_pod(pods[1])
    pods[1].holder = None
    second = collector.collect()
    assert second.errors == ()
    assert not any(dict(p.attributes).get("k8s.pod.uid") == pods[1].uid
                   for p in second.every_point())
    assert any(dict(p.attributes).get("k8s.pod.uid") == pods[0].uid for p in second.every_point())


def test_time_wait_is_counted_per_namespace_from_sockstat(pods) -> None:
    pod, other = pods
    pod.exec("python3", "-c", """
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 9100)); srv.listen(4)
for _ in range(3):
    c = socket.create_connection(("127.0.0.1", 9100)); s, _ = srv.accept()
    c.close(); s.close()   # the client closes first: its side enters TIME_WAIT
""")
    collection = _collect(pods)
    kernel_tw = int(pod.exec("cat", "/proc/net/sockstat").stdout.split("tw ")[1].split()[0])
    assert kernel_tw >= 3
    assert _value(collection, pod, "netreceiver.tcp.connections", **{"tcp.state": "time_wait"}) \
        == kernel_tw
    assert _value(collection, other, "netreceiver.tcp.connections",
                  **{"tcp.state": "time_wait"}) == 0


def test_io_syscalls_accumulate_and_survive_the_process_exiting(pods) -> None:
    pod = pods[0]
    collector = PodNetCollector(PodNetConfig(probes=["io"]), "/proc", Directory(pods))
    writer = subprocess.Popen(["ip", "netns", "exec", pod.netns, "python3", "-c",
                               "import os, sys, time\nfd = os.open('/dev/null', os.O_WRONLY)\n"
                               "for _ in range(500): os.write(fd, b'x' * 10)\n"
                               "sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        time.sleep(1.0)
        move_to_pod(pod, writer.pid)
        seen = _value(collector.collect(), pod, "netreceiver.pod.io.syscalls",
                      **{"network.io.direction": "transmit"})
        assert seen >= 500
    finally:
        writer.communicate(b"", timeout=10)  # it exits
    after = _value(collector.collect(), pod, "netreceiver.pod.io.syscalls",
                   **{"network.io.direction": "transmit"})
    assert after >= seen  # the exited writer's calls stay counted: a counter, not a gauge
