"""Event records from this kernel: resets and drops in test pods, rate limits, OTLP logs, watch.

Everything runs on the real kernel (tracepoints, BPF, perf buffers) with real
test pods (tests/support/pods.py) and a real HTTP OTLP receiver.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_netreceiver.collectors.podnet.identity import NoPods
from otel_netreceiver.config.schema import EbpfConfig, EventsConfig, OtlpConfig
from otel_netreceiver.events.collector import EventsCollector
from otel_netreceiver.events.model import Endpoint, Event
from otel_netreceiver.events.source import EventSource
from tests.support.otlp_sink import OtlpHttpSink, log_records
from tests.support.pods import Pod, kernel_supports_test_pods, pod_pair

pytestmark = pytest.mark.root
ROOT = Path(__file__).parent.parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_EC2_METADATA_DISABLED": "true"}
CLIENT_PORT = 45678


def _kernel_reason() -> str:
    reason = kernel_supports_test_pods()
    if not reason and not Path("/sys/kernel/btf/vmlinux").exists():
        reason = "this kernel has no BTF (/sys/kernel/btf/vmlinux)"
    return reason


REASON = _kernel_reason()
if REASON:
    pytest.skip(REASON, allow_module_level=True)


@pytest.fixture(scope="module")
def pods():
    with pod_pair(47) as made:
        yield made


def _inode(pod: Pod) -> int:
    assert pod.holder is not None
    return int(os.readlink(f"/proc/{pod.holder.pid}/ns/net")[5:-1])


def _source(events: list[Event], **settings: object) -> EventSource:
    config = EventsConfig(**{"types": ["TCP_SEND_RST", "TCP_RECEIVE_RST", "PACKETLOSS"],
                             **settings})  # type: ignore[arg-type]
    source = EventSource(config, EbpfConfig(), "/proc", NoPods(), events.append)
    assert all(not r for r in source.statuses.values()), source.statuses
    source.start()
    return source


def _refused_connect(pod: Pod, port: int = 1) -> None:
    pod.exec("python3", "-c", "import socket\ns = socket.socket()\n"
             "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             f"s.bind(('{pod.pod_ip}', {CLIENT_PORT}))\n"
             f"try: s.connect(('{pod.pod_ip}', {port}))\nexcept ConnectionRefusedError: pass")


def _udp_flood(pod: Pod, n: int, cpu: int | None = None) -> None:
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    pod.exec(*pin, "python3", "-c", "import socket\ns=socket.socket(socket.AF_INET,"
             f"socket.SOCK_DGRAM)\nfor _ in range({n}): s.sendto(b'x', ('127.0.0.1', 9))")


def _wait(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_connect_to_a_closed_port_records_both_resets_with_pod_addresses_and_reason(
        pods) -> None:
    _, b = pods
    events: list[Event] = []
    source = _source(events)
    try:
        _refused_connect(b)
        mine = lambda: [e for e in events if e.netns == _inode(b)]  # noqa: E731
        assert _wait(lambda: {e.name for e in mine()} >= {"TCP_SEND_RST", "TCP_RECEIVE_RST"})
    finally:
        source.close()
    sent = next(e for e in mine() if e.name == "TCP_SEND_RST")
    assert sent.source == Endpoint(b.pod_ip, 1)  # the reset's sender: the closed port
    assert sent.destination == Endpoint(b.pod_ip, CLIENT_PORT)
    assert sent.reason == "NO_SOCKET"  # enum sk_rst_reason from the format file
    assert dict(sent.attributes)["tcp.state"] == "no_socket"
    assert sent.attribute("k8s.pod.uid") == b.uid and sent.attribute("netns.kind") == "pod"
    received = next(e for e in mine() if e.name == "TCP_RECEIVE_RST")
    assert received.source == Endpoint(b.pod_ip, CLIENT_PORT)  # the socket that got it
    assert received.destination == Endpoint(b.pod_ip, 1)
    assert dict(received.attributes)["tcp.state"] == "syn_sent"
    assert abs(sent.time_unix_nano - time.time_ns()) < 30e9


def test_udp_to_a_closed_port_records_drops_with_reason_location_and_addresses(pods) -> None:
    a, _ = pods
    events: list[Event] = []
    source = _source(events, types=["PACKETLOSS"], stack_traces=True)
    try:
        _udp_flood(a, 20)
        udp = lambda: [e for e in events if e.netns == _inode(a)  # noqa: E731
                       and e.location == "__udp4_lib_rcv"]
        assert _wait(lambda: len(udp()) >= 20)
        drops = source.drop_counts()
    finally:
        source.close()
    event = udp()[0]
    assert event.reason == "NO_SOCKET" and event.attribute("k8s.pod.uid") == a.uid
    assert event.destination == Endpoint("127.0.0.1", 9)
    assert dict(event.attributes)["network.transport"] == "udp"
    assert "__udp4_lib_rcv" in event.stack  # the optional kernel stack, symbolised
    assert ("PACKETLOSS", "stack_lost") not in drops


def test_a_flood_above_the_kernel_budget_passes_exactly_the_budget(pods) -> None:
    a, _ = pods
    events: list[Event] = []
    source = _source(events, types=["PACKETLOSS"], kernel_budget=40, rate_limit=1e6,
                     burst=1_000_000)
    try:
        _udp_flood(a, 3000, cpu=0)  # one CPU: the budget is per CPU and second
        time.sleep(0.5)
        ours = [e for e in events if e.netns == _inode(a)]
        drops = source.drop_counts()
    finally:
        source.close()
    assert len(ours) == 40
    assert {dict(e.attributes)["cpu"] for e in ours} == {"0"}
    assert drops[("PACKETLOSS", "rate_limit_kernel")] >= 3000 - 40


def test_a_flood_above_the_agents_rate_limit_is_cut_to_the_burst_and_counted(pods) -> None:
    a, _ = pods
    events: list[Event] = []
    source = _source(events, types=["PACKETLOSS"], kernel_budget=100000, rate_limit=0.001,
                     burst=25)
    try:
        _udp_flood(a, 500)
        time.sleep(0.5)
        drops = source.drop_counts()
        delivered = dict(source.delivered)
    finally:
        source.close()
    assert delivered["PACKETLOSS"] == len(events) == 25
    assert drops[("PACKETLOSS", "rate_limit_user")] >= 500 - 25
    assert ("PACKETLOSS", "rate_limit_kernel") not in drops


def test_without_a_budget_the_perf_buffer_losses_are_counted_not_silent(pods) -> None:
    a, _ = pods
    events: list[Event] = []
    source = _source(events, types=["PACKETLOSS"], kernel_budget=10**9, rate_limit=1e9,
                     burst=10**9)
    try:
        _udp_flood(a, 20000, cpu=0)

        def accounted() -> int:
            ours = sum(1 for e in events if e.netns == _inode(a))
            return ours + source.drop_counts().get(("PACKETLOSS", "perf_buffer_full"), 0)
        assert _wait(lambda: accounted() >= 20000, timeout=20), accounted()
        # bcc's lost callback reports the same samples, a little later (at the next read)
        assert _wait(lambda: source.perf_lost == source.drop_counts().get(
            ("PACKETLOSS", "perf_buffer_full"), 0), timeout=10)
    finally:
        source.close()


def test_event_records_arrive_as_otlp_logs(pods) -> None:
    _, b = pods
    sink = OtlpHttpSink()
    collector = EventsCollector(
        EventsConfig(types=["TCP_SEND_RST"], schedule_delay=0.2), EbpfConfig(),
        OtlpConfig(endpoint=sink.endpoint, timeout=2.0), {"service.name": "otel-netreceiver"},
        "/proc", NoPods())
    try:
        assert collector.probe().active, collector.probe().reason
        _refused_connect(b)

        def ours() -> list:
            return [r for req in sink.log_requests for r in log_records(req)
                    if any(kv.key == "k8s.pod.uid" and kv.value.string_value == b.uid
                           for kv in r.attributes)]
        assert _wait(ours, timeout=10)
        points = {(p.metric.name, p.attributes): p.value for p in collector.collect().points}
    finally:
        collector.close()
        sink.close()
    record = ours()[0]
    a = {kv.key: kv.value for kv in record.attributes}
    assert record.event_name == a["event.name"].string_value == "TCP_SEND_RST"
    assert (record.severity_number, record.severity_text) == (9, "INFO")
    assert a["reason"].string_value == "NO_SOCKET" and a["source.port"].int_value == 1
    assert (a["destination.address"].string_value, a["destination.port"].int_value) == (
        b.pod_ip, CLIENT_PORT)
    resource = sink.log_requests[0].resource_logs[0].resource.attributes
    assert {kv.key: kv.value.string_value for kv in resource} == {
        "service.name": "otel-netreceiver"}
    assert points[("netreceiver.events", (("event.name", "TCP_SEND_RST"),))] >= 1


def _watch(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "otel_netreceiver", "watch", *args], env=ENV,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], deadline - time.monotonic())
        line = proc.stderr.readline() if ready else ""
        if not line:
            break
        if line.startswith("watching"):
            return proc
    proc.kill()
    raise AssertionError(f"watch {args} never started: {proc.communicate()}")


def _stop(proc: subprocess.Popen) -> tuple[list[str], str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out.splitlines(), err


def test_watch_prints_the_pods_reset_and_its_filters_work(pods) -> None:
    a, b = pods
    by_pod = _watch("--type", "TCP_SEND_RST", "--pod", b.uid)
    by_namespace = _watch("--type", "TCP_SEND_RST", "--namespace", "no-such-namespace")
    drops_json = _watch("--type", "PACKETLOSS", "--pod", b.uid, "--format", "json")
    _refused_connect(a, port=2)
    _refused_connect(b)
    time.sleep(1.0)
    lines, err = _stop(by_pod)
    assert any(f"pod.uid={b.uid} TCP_SEND_RST {b.pod_ip}:1 -> {b.pod_ip}:{CLIENT_PORT} "
               "state=no_socket reason=NO_SOCKET" in line for line in lines), (lines, err)
    assert all(b.uid in line and "TCP_SEND_RST" in line for line in lines)  # not pod a's
    assert _stop(by_namespace)[0] == []
    records = [json.loads(line) for line in _stop(drops_json)[0]]
    assert records and {r["attributes"]["event.name"] for r in records} == {"PACKETLOSS"}
    assert {r["attributes"]["k8s.pod.uid"] for r in records} == {b.uid}
    assert "dropped: {" in err


def test_slow_softirq_and_transmit_records_above_a_threshold(pods) -> None:
    a, _ = pods
    events: list[Event] = []
    source = _source(events, types=["NET_SOFTIRQ_SLOW", "NETIF_TXLAT_SLOW"],
                     softirq_threshold=1e-6, txlat_threshold=1e-6)
    try:
        _udp_flood(a, 200)
        assert _wait(lambda: {e.name for e in events} >= {"NET_SOFTIRQ_SLOW",
                                                          "NETIF_TXLAT_SLOW"})
    finally:
        source.close()
    for event in events:
        own = dict(event.attributes)
        assert int(own["latency.ns"]) >= 1000  # the threshold, rendered as a #define
        if event.name == "NET_SOFTIRQ_SLOW":
            assert own["softirq.vector"] in ("NET_RX", "NET_TX")
            assert own["softirq.phase"] in ("schedule", "execute")
        else:
            assert own["network.interface.name"]


def test_retransmissions_record_the_pods_addresses(pods) -> None:
    a, _ = pods
    a.exec("nft", "add table inet onrevents")
    a.exec("nft", "add chain inet onrevents out { type filter hook output priority 0 ; }")
    a.exec("nft", "add rule inet onrevents out tcp dport 7778 drop")
    events: list[Event] = []
    source = _source(events, types=["TCP_RETRANS"])
    try:
        a.exec("python3", "-c", "import socket\ns = socket.socket(); s.settimeout(1.5)\n"
               f"try: s.connect(('{a.host_ip}', 7778))\nexcept OSError: pass", check=False)
        assert _wait(lambda: any(e.netns == _inode(a) for e in events))
    finally:
        source.close()
        a.exec("nft", "delete table inet onrevents", check=False)
    event = next(e for e in events if e.netns == _inode(a))
    assert event.name == "TCP_RETRANS" and dict(event.attributes)["tcp.state"] == "syn_sent"
    assert event.source is not None and event.source.address == a.pod_ip
    assert event.destination == Endpoint(a.host_ip, 7778)


def _bpf_program_fds() -> int:
    return sum(1 for fd in Path("/proc/self/fd").iterdir()
               if _readlink(fd) == "anon_inode:bpf-prog")


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def test_closing_stops_the_threads_and_detaches_the_programs() -> None:
    programs_before = _bpf_program_fds()
    sink = OtlpHttpSink()
    collector = EventsCollector(EventsConfig(types=["TCP_SEND_RST", "PACKETLOSS"]),
                                EbpfConfig(), OtlpConfig(endpoint=sink.endpoint), {}, "/proc",
                                NoPods())
    names = lambda: {t.name for t in threading.enumerate()}  # noqa: E731
    assert {"events-poll", "events-export"} <= names()
    assert _bpf_program_fds() == programs_before + 3  # two reset programs and one drop program
    started = time.monotonic()
    collector.close()
    sink.close()
    assert time.monotonic() - started < 3  # the poll's timeout, not a hang
    assert not {"events-poll", "events-export"} & names()
    assert _bpf_program_fds() == programs_before


def _agent_config(endpoint: str, types: str) -> str:
    return f"""
interval: 1s
jitter: 0
collectors:
  ena: {{enabled: false}}
  netdev: {{enabled: false}}
  podnet: {{enabled: false}}
  nodenet: {{enabled: false}}
  ebpf: {{enabled: false}}
  events:
    types: {types}
    schedule_delay: 200ms
exporters:
  otlp: {{endpoint: "{endpoint}", timeout: 2s}}
"""


def test_a_reload_swaps_the_event_programs_and_records_keep_arriving(pods) -> None:
    import io

    from otel_netreceiver.cloud.imds import InstanceMetadata
    from otel_netreceiver.config.loader import load_text
    from otel_netreceiver.runtime.agent import Agent

    _, b = pods
    sink = OtlpHttpSink()
    agent = Agent(load_text(_agent_config(sink.endpoint, "[PACKETLOSS]"), "a.yaml", {}), {},
                  stream=io.StringIO(), metadata=InstanceMetadata())
    agent.start()
    try:
        events = agent.runners["events"].collector
        assert "packetloss: loaded" in events.probe().reason
        agent.apply(load_text(_agent_config(sink.endpoint, "[TCP_SEND_RST]"), "a.yaml", {}))
        assert agent.runners["events"].collector is not events
        assert "tcpreset: loaded" in agent.runners["events"].collector.probe().reason
        _refused_connect(b)

        def names() -> set[str]:
            return {r.event_name for req in sink.log_requests for r in log_records(req)
                    if any(kv.value.string_value == b.uid for kv in r.attributes)}
        assert _wait(lambda: "TCP_SEND_RST" in names(), timeout=10)
        assert "PACKETLOSS" not in names()  # the old program is gone
        resource = sink.log_requests[-1].resource_logs[0].resource.attributes
        assert {kv.key: kv.value.string_value for kv in resource} == agent.resource  # metrics'
    finally:
        agent.stop(flush=False)
        sink.close()
