"""Faults the playbooks must tell apart, injected on real kernel objects: a delaying and
reordering path, a lossy path diluted by healthy traffic, a full accept queue, an MTU black
hole and a firewall that answers with resets (docs/background.md, "Sources": the latency
jitter, packet loss and TCP reset playbooks of the ACK Net Exporter guide).

Each test runs its traffic once without the fault (no finding on the pods involved), then
with it; it first proves the fault in the kernel's own counters (nstat in the pods and the
node, `ss -ti`, nft rule counters, the relay's own statistics), then asserts the finding's
verdict, its pod(s), and that the explanations a wrong rule would give are absent.

Delay, jitter and loss come from tests/support/wire.py (this kernel has no netem): the
server pods of the first two tests sit behind a wire namespace whose relay holds or drops
frames. Pods route to each other through the node (tests/support/sdk_node.py link_pods).
One agent for the module (interval 1s, correlation socket), as in test_playbooks.py, whose
helpers ask `diagnose` and check clean runs; test pods use indices 90-99.

With ONR_WRITE_PRECISION=1 each test writes what it expected and what `diagnose` produced
(on the clean run and under the fault) to tests/data/diagnosis_precision.json, the input of
the precision table in docs/playbooks.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from otel_netreceiver.diagnosis.playbooks_path import TIMEOUT_EVENTS
from tests.integration.test_playbooks import (
    SETTLE,
    _background,
    _diagnose,
    _finding,
    _run,
    _stop,
    _unclassified,
    _verdicts,
    start_agent,
)
from tests.support.fault_traffic import (
    REQUEST_SERVER,
    counting,
    nft,
    nft_packets,
    request_client,
    rttvar_ms,
    srtt_ms,
)
from tests.support.k8s_api import KubeApiDouble, make_pod
from tests.support.pods import Pod, create_pod, destroy_pod, kernel_supports_test_pods, run
from tests.support.sdk_node import link_pods
from tests.support.wire import Fault, RelayStats, Wire, wired

pytestmark = pytest.mark.root
NODE = "node-diagnosis-faults"
PODS = {"delay-client": 90, "delayed-server": 91, "loss-client": 92, "lossy-server": 93,
        "healthy-server": 94, "crowd-client": 95, "backlog-server": 96, "upload-client": 97,
        "small-mtu-server": 98, "firewall-client": 99}
WIRED = ("delayed-server", "lossy-server")
PORT, BACKLOG_PORT = 9300, 9301
PRECISION = Path(__file__).resolve().parents[1] / "data" / "diagnosis_precision.json"
PATH_COUNTERS = ("TcpOutSegs", "TcpRetransSegs", "TcpExtTCPDSACKRecv", "TcpExtTCPSACKReorder",
                 "TcpExtTCPTimeouts", "TcpExtPAWSEstab", "TcpExtTCPSynRetrans")
NOBODY_LISTENING = re.compile(r"nobody listen|no listener|not listening|closed port", re.I)

# A listener with backlog 1 that accepts one connection every `pause` seconds.
SLOW_LISTENER = r"""
import socket, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1]))); srv.listen(int(sys.argv[2])); print("ready", flush=True)
held = []
while True:
    held.append(srv.accept()); time.sleep(float(sys.argv[3]))
"""

# `count` non-blocking connects at once, held 3 s; prints how many completed.
CONNECTS = r"""
import socket, sys, time
clients = []
for _ in range(int(sys.argv[3])):
    c = socket.socket(); c.setblocking(False); c.connect_ex((sys.argv[1], int(sys.argv[2])))
    clients.append(c)
time.sleep(3)
print(sum(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for c in clients))
for c in clients: c.close()
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    reason = kernel_supports_test_pods()
    if reason:
        pytest.skip(reason)
    for tool in ("nft", "ethtool", "ss"):
        if subprocess.run(["which", tool], capture_output=True, check=False).returncode:
            pytest.skip(f"{tool} is not installed: run scripts/install-deps.sh")
    tmp = tmp_path_factory.mktemp("faults")
    with contextlib.ExitStack() as stack:
        api = KubeApiDouble()
        stack.callback(api.close)
        pods = {name: create_pod(index) for name, index in PODS.items()}
        for pod in pods.values():
            stack.callback(destroy_pod, pod)
        link_pods(list(pods.values()))
        wires = {name: stack.enter_context(wired(pods[name])) for name in WIRED}
        for name, pod in pods.items():
            api.add(make_pod(name, "shop", NODE, uid=pod.uid, ip=pod.pod_ip))
        agent, sock = start_agent(tmp, api)
        stack.callback(agent.stop, flush=False)
        deadline = time.monotonic() + 20
        while agent.pods.count() < len(pods) and time.monotonic() < deadline:
            time.sleep(0.1)
        agent.wait_first_collection(60)
        ebpf = {s.name: s.reason for s in agent.probes()}.get("ebpf", "")
        yield {"agent": agent, "pods": pods, "wires": wires, "socket": sock, "ebpf": ebpf}


# --- the kernel's side -----------------------------------------------------------------

def _client_argv(node, client: str, server: str, conns: int, seconds: float, up: int,
                 down: int, pause: float = 0.01) -> list[str]:
    return request_client(node["pods"][client], node["pods"][server].pod_ip, PORT, conns,
                          seconds, up, down, pause)


def _client(node, client: str, server: str, conns: int, seconds: float, up: int,
            down: int, pause: float = 0.01) -> dict:
    argv = _client_argv(node, client, server, conns, seconds, up, down, pause)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


@contextlib.contextmanager
def _serving(node, *names: str) -> Iterator[None]:
    procs = [_background(node["pods"][n], REQUEST_SERVER, str(PORT)) for n in names]
    try:
        yield
    finally:
        for proc in procs:
            _stop(proc)


# --- diagnose's side -------------------------------------------------------------------

class WrongDiagnosis(AssertionError):
    """A finding assertion failed (a finding on a clean run, a verdict missing or wrong
    under the fault), the kernel side having held: the only failure an xfail mark of this
    module expects (a fault that did not happen must fail loudly, never as "expected")."""


def _expect(holds: object, detail: object) -> None:
    if not holds:
        raise WrongDiagnosis(detail)


def _on(doc: dict, pod: Pod) -> list[dict]:
    return [f for f in doc["findings"] if f.get("pod", {}).get("k8s.pod.uid") == pod.uid]


_TEST_STARTED = [0.0]


@pytest.fixture(autouse=True)
def _own_window():  # type: ignore[no-untyped-def]
    """Each test asks `diagnose` about its own time only: the module's agent still holds the
    previous tests' faults (a full accept queue, fragmentation failures) in a 2 m window,
    and links on this node are by time, so they would explain this test's findings."""
    _TEST_STARTED[0] = time.monotonic()
    yield


def _since() -> str:
    return f"{math.ceil(time.monotonic() - _TEST_STARTED[0]) + 1}s"


def _clean(node, *names: str) -> dict[str, list[str]]:
    """After a clean run, two cycles: what `diagnose` says about the pods (the orderly close
    frees that test_playbooks.py tolerates aside), which ``_check`` wants empty."""
    time.sleep(SETTLE)
    doc = _diagnose(node, since=_since())
    return {n: [f["verdict"] for f in _on(doc, node["pods"][n]) if not _unclassified(f)]
            for n in names}


def _awaited(node, expected: dict[str, set[str]], either: bool = False,
             patience: float = 10) -> dict:
    """Poll `diagnose` until every expected verdict is on its pod (with ``either``: on one
    of the pods) or ``patience`` ends (collectors run on their own clocks); the caller
    asserts on what came back."""
    time.sleep(SETTLE)  # every collector has read the fault: what follows is all of it
    deadline = time.monotonic() + patience
    while True:
        doc = _diagnose(node, since=_since())
        met = [want <= set(_verdicts(doc, node["pods"][n])) for n, want in expected.items()]
        if (any(met) if either else all(met)) or time.monotonic() > deadline:
            return doc
        time.sleep(0.5)


def _names(value: object) -> set[str]:
    """Every string inside a finding's ``related`` (a pod identity or a list of them)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {s for v in value.values() for s in _names(v)}
    if isinstance(value, list | tuple):
        return {s for v in value for s in _names(v)}
    return set()


def _related_to(finding: dict, pod: Pod) -> bool:
    return pod.uid in _names(finding.get("related"))


def _pod_label(identity: dict) -> str:
    """A related pod as the table shows it: its name, else whatever identifies it."""
    return identity.get("k8s.pod.name") or json.dumps(identity, sort_keys=True)


def _record(node, fault: str, kernel: dict, clean: dict[str, list[str]], doc: dict,
            expected: dict[str, set[str]], absent: dict[str, set[str]]) -> None:
    """One row of the precision table (only with ONR_WRITE_PRECISION=1)."""
    if os.environ.get("ONR_WRITE_PRECISION") != "1":
        return
    rows = json.loads(PRECISION.read_text()) if PRECISION.exists() else {}
    rows[fault] = {
        "kernel": kernel, "clean": clean,
        "expected": {n: sorted(v) for n, v in expected.items()},
        "absent": {n: sorted(v) for n, v in absent.items()},
        "produced": {n: sorted({f["verdict"] for f in _on(doc, node["pods"][n])})
                     for n in sorted(set(expected) | set(absent) | set(clean))},
        "rules": {n: sorted({f["rule"] for f in _on(doc, node["pods"][n])})
                  for n in sorted(set(expected) | set(absent) | set(clean))},
        "related": {n: {f["verdict"]: sorted(_pod_label(r) for r in f["related"])
                        for f in _on(doc, node["pods"][n]) if f.get("related")}
                    for n in sorted(set(expected) | set(absent) | set(clean))},
        "node": sorted({f["verdict"] for f in doc["findings"] if "pod" not in f})}
    PRECISION.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")


def _check(node, clean: dict[str, list[str]], doc: dict, expected: dict[str, set[str]],
           absent: dict[str, set[str]]) -> None:
    _expect(not any(clean.values()), f"the clean run produced findings: {clean}")
    for name, want in expected.items():
        pod = node["pods"][name]
        _expect(want <= set(_verdicts(doc, pod)), (name, _on(doc, pod)))
    for name, wrong in absent.items():
        _expect(not wrong & set(_verdicts(doc, node["pods"][name])), (name, wrong))


def _sampled_rtts(pod: Pod, peer: str) -> tuple[list[float], list[float]]:
    """`ss -ti` smoothed RTTs and mean deviations of the pod's sockets to ``peer``, read
    four times, from 2.5 s into a 5 s fault, 0.5 s apart: the rule reads the deviation's
    peak over its window (a sample a second), and the kernel's estimate moves with every
    RTT sample, more slowly down than up (tcp_rtt_estimator, net/ipv4/tcp_input.c): a single
    read at 3 s found 48 ms, under the rule's 50, in one loaded run of five."""
    rtts: list[float] = []
    rttvars: list[float] = []
    time.sleep(2.5)
    for _ in range(4):
        rtts += srtt_ms(pod, peer)
        rttvars += rttvar_ms(pod, peer)
        time.sleep(0.5)
    return rtts, rttvars


# --- the faults --------------------------------------------------------------------------

# Not strict: whether the clean run has its tail loss probe is chance (most runs do).
def test_a_delaying_and_reordering_path_is_delay_not_loss(node):
    client, server = node["pods"]["delay-client"], node["pods"]["delayed-server"]
    wire: Wire = node["wires"]["delayed-server"]
    with _serving(node, "delayed-server"):
        # 3 connections: their answers in flight (3 x 20000 B) stay under the 64 KiB of queued
        # bytes the queue rules read, so a loaded node's slow softirq or reader is no finding
        assert not _client(node, "delay-client", "delayed-server", 3, 1.5, 2000, 20000)["errors"]
        clean = _clean(node, "delay-client", "delayed-server")
        with counting(client, server) as deltas, \
                wire.inject(Fault(delay=0.2, jitter=0.15, seed=2)) as relayed:
            traffic = subprocess.Popen(
                _client_argv(node, "delay-client", "delayed-server", 4, 5, 20000, 20000),
                stdout=subprocess.PIPE, text=True)
            rtts, rttvars = _sampled_rtts(client, server.pod_ip)
            out = json.loads(traffic.communicate(timeout=60)[0])
    stats: RelayStats = relayed[0]
    # the fault as the kernel saw it: every frame delivered, many out of order; TCP took
    # the reordering for loss at first and its retransmissions came back as duplicates
    assert stats.dropped == 0 and stats.send_errors == 0 and stats.reordered > 100, stats
    both = {k: deltas[0].get(k, 0) + deltas[1].get(k, 0) for k in (*deltas[0], *deltas[1])}
    assert both.get("TcpExtTCPSACKReorder", 0) > 0 and both.get("TcpExtTCPDSACKRecv", 0) > 0
    assert both.get("TcpRetransSegs", 0) > 0, both
    # each direction is held 50-350 ms: the smoothed RTT is two of those
    assert rtts and all(100 <= rtt <= 700 for rtt in rtts), rtts
    # and it varies: the kernel's mean deviation peaks at tens of milliseconds, a clean
    # veth's at a few microseconds
    assert rttvars and max(rttvars) > 50, rttvars
    assert out["done"] > 0
    kernel = {"relay": asdict(stats), "srtt_ms": rtts, "rttvar_ms": rttvars, "requests": out,
              "nstat_client_plus_server": {k: both.get(k, 0) for k in PATH_COUNTERS}}
    # both ends measure the same round trip: the jitter is on both pods' paths, and the
    # reordering it causes shows on at least one of them (whichever retransmitted)
    jitter = {n: {"path_jitter"} for n in ("delay-client", "delayed-server")}
    reordering = {n: {"path_delay_or_reordering"} for n in jitter}
    expected = {n: jitter[n] | reordering[n] for n in jitter}
    absent = {n: {"tcp_packet_loss", "paws_or_syn_recv_ack_skipped", "latency_in_node_stack",
                  "latency_in_socket_queue"} for n in expected}
    doc = _awaited(node, jitter)
    _record(node, "path delay 200 ms ± 150 ms (reordering, no loss)", kernel, clean, doc,
            expected, absent)
    _check(node, clean, doc, jitter, absent)
    for name in jitter:  # the finding carries the numbers: the RTT and its deviation
        finding = _finding(doc, node["pods"][name], "path_jitter")
        values = {(e["signal"], e["attributes"].get("tcp.rtt.statistic")): e["value"]
                  for e in finding["evidence"] if e.get("op") == "peak"}
        _expect(values.get(("netreceiver.tcp.rtt.variation", "max"), 0) > 0.05, finding)
        _expect(values.get(("netreceiver.tcp.rtt", "max"), 0) > 0.1, finding)
    named = [n for n, want in reordering.items()
             if want <= set(_verdicts(doc, node["pods"][n]))]
    _expect(named, {n: _verdicts(doc, node["pods"][n]) for n in expected})


def test_a_lossy_path_is_loss_on_both_ends_even_diluted_by_healthy_traffic(node):
    client, server = node["pods"]["loss-client"], node["pods"]["lossy-server"]
    with _serving(node, "lossy-server", "healthy-server"):
        for target in ("lossy-server", "healthy-server"):
            assert not _client(node, "loss-client", target, 2, 1, 2000, 2000)["errors"]
        clean = _clean(node, "loss-client", "lossy-server", "healthy-server")
        # loss drawn per segment (tests/support/wire.py): each run loses the same segments
        with counting(client, server) as deltas, \
                node["wires"]["lossy-server"].inject(Fault(loss=0.2, seed=3)) as relayed:
            healthy = subprocess.Popen(
                _client_argv(node, "loss-client", "healthy-server", 2, 4, 2000, 20000, 0.005),
                stdout=subprocess.PIPE, text=True)
            lossy = _client(node, "loss-client", "lossy-server", 2, 4, 2000, 2000)
            healthy_out = json.loads(healthy.communicate(timeout=60)[0])
    stats: RelayStats = relayed[0]
    assert stats.seen > 200 and 0.12 < stats.dropped / stats.seen < 0.28, stats
    assert not healthy_out["errors"] and healthy_out["done"] > lossy["done"]
    mine, theirs = deltas
    assert theirs.get("TcpRetransSegs", 0) > 0 and mine.get("TcpRetransSegs", 0) > 0
    # the client's own evidence: its requests' retransmission timeouts, more than the stray
    # ones a healthy path may have (what the client's loss finding stands on)
    assert mine.get("TcpExtTCPTimeouts", 0) > TIMEOUT_EVENTS, mine
    # what made the client's loss invisible to a ratio over the whole window: the healthy
    # traffic's segments outnumber the lossy connections' retransmissions fifty to one
    assert mine["TcpRetransSegs"] / mine["TcpOutSegs"] < 0.02, mine
    kernel = {"relay": asdict(stats), "requests": {"lossy": lossy, "healthy": healthy_out},
              "nstat_client": {k: mine.get(k, 0) for k in PATH_COUNTERS},
              "nstat_server": {k: theirs.get(k, 0) for k in PATH_COUNTERS}}
    expected = {"loss-client": {"tcp_packet_loss"}, "lossy-server": {"tcp_packet_loss"}}
    absent = {"healthy-server": {"tcp_packet_loss"}}
    doc = _awaited(node, expected)
    _record(node, "20 % frame loss on a server's path, healthy traffic alongside", kernel,
            clean, doc, expected, absent)
    _check(node, clean, doc, expected, absent)


def test_a_full_accept_queue_is_the_servers_and_the_clients_retries_point_at_it(node):
    client, server = node["pods"]["crowd-client"], node["pods"]["backlog-server"]
    ip = server.pod_ip
    listener = _background(server, SLOW_LISTENER, str(BACKLOG_PORT), "128", "0")
    try:
        assert _run(client, CONNECTS, ip, str(BACKLOG_PORT), "20") == "20"
    finally:
        _stop(listener)
    clean = _clean(node, "crowd-client", "backlog-server")
    listener = _background(server, SLOW_LISTENER, str(BACKLOG_PORT), "1", "0.2")
    try:
        with counting(client, server) as deltas:
            connected = int(_run(client, CONNECTS, ip, str(BACKLOG_PORT), "300"))
    finally:
        _stop(listener)
    mine, theirs = deltas
    # the server dropped SYNs at a full queue and answered others with cookies; the
    # client's only retransmissions are its SYNs
    assert theirs.get("TcpExtListenOverflows", 0) > 0 and theirs.get("TcpExtSyncookiesSent", 0)
    assert mine.get("TcpExtTCPSynRetrans", 0) > 0
    assert mine["TcpExtTCPSynRetrans"] == mine.get("TcpRetransSegs", 0), mine
    kernel = {"connected": connected,
              "nstat_client": {k: mine.get(k, 0) for k in PATH_COUNTERS},
              "nstat_server": {k: theirs.get(k, 0) for k in (
                  "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtSyncookiesSent",
                  "TcpExtSyncookiesRecv", "TcpOutRsts")}}
    expected = {"backlog-server": {"listen_overflow"},
                "crowd-client": {"connect_retries_to_full_listener"}}
    absent = {"crowd-client": {"tcp_packet_loss"}}
    doc = _awaited(node, expected)
    _record(node, "accept queue overflow (backlog 1, slow accept, 300 connects)", kernel,
            clean, doc, expected, absent)
    _check(node, clean, doc, expected, absent)
    retries = _finding(doc, client, "connect_retries_to_full_listener")
    _expect(_related_to(retries, server), retries.get("related"))
    # the listener was there all along: the NO_SOCKET drops at the server (cookie_v4_check,
    # a full queue) are not "nobody listening", there or node-wide
    for finding in _on(doc, server) + [f for f in doc["findings"] if "pod" not in f]:
        no_socket = [e for e in finding["evidence"] if {"NO_SOCKET", "no_socket"}
                     & _names(e["attributes"])]
        text = f"{finding['summary']} {finding['advice']}"
        _expect(not (no_socket and NOBODY_LISTENING.search(text)), finding)


def test_an_mtu_black_hole_is_named_not_loss(node):
    client, server = node["pods"]["upload-client"], node["pods"]["small-mtu-server"]
    table = f"onrdf{os.getpid() % 1000}"
    # 12000-byte uploads: all five in flight at once (60 kB) stay under the 64 KiB of queued
    # bytes that the send and receive queue rules read; 64 kB uploads let one request sit
    # in a send queue above it, which a loaded run's clean pass reported as peer_not_reading
    upload = ("small-mtu-server", 5, 0.5, 12000, 16)
    with _serving(node, "small-mtu-server"):
        assert not _client(node, "upload-client", *upload)["errors"]
        clean = _clean(node, "upload-client", "small-mtu-server")
        run("ip", "link", "set", server.host_veth, "mtu", "1280")
        nft(None, f"add table inet {table}\n"
                   f"add chain inet {table} out {{ type filter hook output priority 0; }}\n"
                   f"add rule inet {table} out ip daddr {client.pod_ip} icmp type "
                   "destination-unreachable icmp code frag-needed counter drop\n")
        try:
            with counting(client, None) as deltas:
                out = _client(node, "upload-client", *upload)
            dropped_icmp = nft_packets(None, table)
            route = client.exec("ip", "route", "get", server.pod_ip).stdout
        finally:
            run("nft", "delete", "table", "inet", table, check=False)
            run("ip", "link", "set", server.host_veth, "mtu", "1500")
    mine, host = deltas
    # every upload timed out: the node could not forward the full-size segments, told the
    # client so, and its own rule dropped the news; the client's path MTU never moved
    assert out["done"] == 0 and set(out["errors"]) == {"TimeoutError"}, out
    assert host.get("IpFragFails", 0) > 0 and dropped_icmp > 0
    assert mine.get("TcpExtTCPTimeouts", 0) > 0 and " mtu " not in route, (mine, route)
    kernel = {"uploads": out, "icmp_frag_needed_dropped_by_nft": dropped_icmp,
              "host_IpFragFails": host.get("IpFragFails", 0),
              "nstat_client": {k: mine.get(k, 0) for k in PATH_COUNTERS}}
    expected = {"upload-client": {"mtu_black_hole"}}
    absent = {"upload-client": {"tcp_packet_loss"}}
    doc = _awaited(node, expected)
    _record(node, "MTU black hole (1280-byte hop, ICMP frag-needed dropped)", kernel, clean,
            doc, expected, absent)
    _check(node, clean, doc, expected, absent)


def test_a_firewall_rejecting_with_resets_is_named_on_the_client_with_the_server(node):
    client, server = node["pods"]["firewall-client"], node["pods"]["healthy-server"]
    with _serving(node, "healthy-server"):
        assert not _client(node, "firewall-client", "healthy-server", 4, 1, 2000, 2000)["errors"]
        clean = _clean(node, "firewall-client", "healthy-server")
        nft(server.netns, "add table inet onrfw\n"
                           "add chain inet onrfw in { type filter hook input priority 0; }\n"
                           f"add rule inet onrfw in tcp dport {PORT} numgen random mod 10 == 0 "
                           "counter reject with tcp reset\n")
        try:
            with counting(client) as deltas:
                out = _client(node, "firewall-client", "healthy-server", 4, 2, 2000, 2000)
            rejected = nft_packets(server.netns, "onrfw")
        finally:
            server.exec("nft", "delete", "table", "inet", "onrfw", check=False)
    (mine,) = deltas
    # the server pod's rule answered for the server: the client's connections were reset
    # while established, and the server's late segments then met no socket on the client
    assert rejected > 0 and out["errors"].get("ConnectionResetError", 0) > 0, out
    assert mine.get("TcpEstabResets", 0) > 0, mine
    kernel = {"requests": out, "nft_rejected": rejected,
              "nstat_client": {k: mine.get(k, 0) for k in (
                  "TcpEstabResets", "TcpOutRsts", "TcpAttemptFails", "TcpActiveOpens")}}
    if "packetloss: loaded" not in node["ebpf"]:
        pytest.skip(f"the firewall's drops are the packetloss probe's: {node['ebpf']}")
    expected = {"firewall-client": {"reset_by_firewall"}}
    absent: dict[str, set[str]] = {}
    doc = _awaited(node, expected)
    _record(node, "firewall in the server pod rejecting 10 % with TCP reset", kernel, clean,
            doc, expected, absent)
    _check(node, clean, doc, expected, absent)
    firewall = _finding(doc, client, "reset_by_firewall")
    _expect(_related_to(firewall, server), firewall.get("related"))
    for finding in _on(doc, client):  # the client's own no_socket resets explain nothing
        if finding["verdict"] == "reset_by_peer":
            _expect(not [e for e in finding["evidence"]
                         if "no_socket" in _names(e["attributes"])], finding)
